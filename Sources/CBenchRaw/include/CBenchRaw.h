// Reference loops written in plain C, so benchmarks compare edged with the library used directly.
#ifndef CBENCHRAW_H
#define CBENCHRAW_H
#include <stdint.h>

/// Reads `count` holding registers at `address` from `unit` at host:port `iterations` times over one
/// connection with libmodbus. Returns the number of successful reads, or -1 if it cannot connect.
int64_t raw_modbus_tcp_loop(const char *host, int port, int unit, int address, int count, int64_t iterations);

/// Asks the kernel to reclaim every page of process `pid` it can (process_madvise(MADV_PAGEOUT) over each of
/// its mappings; pages shared with other processes and, without swap, anonymous pages stay). What the process
/// touches again afterwards is its working set. Returns the number of mappings advised, or -errno (EPERM
/// without CAP_SYS_NICE).
int raw_page_out(int pid);

#endif
