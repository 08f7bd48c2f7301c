// The system's librdkafka (Debian: librdkafka-dev), found with pkg-config: the Kafka client the
// services' Kafka bus (KafkaClient) runs on.
#include <librdkafka/rdkafka.h>
