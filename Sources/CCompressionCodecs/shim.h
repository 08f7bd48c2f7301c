// The four codecs Kafka clients compress record batches with, from Debian's -dev packages
// (zlib1g-dev, libsnappy-dev, liblz4-dev, libzstd-dev).
#include <zlib.h>
#include <snappy-c.h>
#include <lz4frame.h>
#include <zstd.h>
