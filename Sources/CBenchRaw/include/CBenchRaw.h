// Reference loops written in plain C, so benchmarks compare edged with the library used directly.
#ifndef CBENCHRAW_H
#define CBENCHRAW_H
#include <stdint.h>

/// Reads `count` holding registers at `address` from `unit` at host:port `iterations` times over one
/// connection with libmodbus. Returns the number of successful reads, or -1 if it cannot connect.
int64_t raw_modbus_tcp_loop(const char *host, int port, int unit, int address, int count, int64_t iterations);

#endif
