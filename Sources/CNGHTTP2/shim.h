// The system's libnghttp2 (Debian: libnghttp2-dev), found with pkg-config.
#include <nghttp2/nghttp2.h>
