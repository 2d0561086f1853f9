// The OS calls Swift cannot make directly (ioctl requests and structs built from kernel headers, glibc's
// allocator controls), beneath the EdgeSystem target. No library but libc.
#ifndef CEDGESYSTEM_H
#define CEDGESYSTEM_H

#include <stddef.h>
#include <stdint.h>

// ---- RS-485 (TIOCSRS485) -------------------------------------------------
/// Puts a serial port into RS-485 mode with the given RTS behaviour.
/// Returns 0 on success, or the errno of the failed ioctl (ENOTTY/EINVAL when
/// the driver — a pty, many USB adapters — has no RS-485 support).
int edge_serial_set_rs485(int fd, int enabled, int rts_on_send, int rts_after_send,
                          uint32_t delay_before_ms, uint32_t delay_after_ms);

// ---- Unix sockets ----------------------------------------------------------
/// The peer's pid, uid and gid of a connected Unix socket (SO_PEERCRED). Returns 0 or errno.
int edge_peer_credentials(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid);

// ---- Clock --------------------------------------------------------------------
/// 1 when the kernel considers the system clock synchronized (ntp_adjtime: no TIME_ERROR, no STA_UNSYNC).
/// 1 synchronized, 0 not, -errno when the kernel could not be asked (then nobody knows: treat as not).
int edge_clock_synchronized(void);

// ---- Heap ---------------------------------------------------------------------
/// glibc's allocator over all arenas (mallinfo2): bytes in live allocations, and bytes it holds from the
/// kernel (in use + free chunks it keeps). A leak grows the first; fragmentation only the second.
void edge_heap_usage(uint64_t *in_use, uint64_t *held);
/// Allocations of at least `bytes` get their own mapping, returned to the kernel when freed
/// (mallopt(M_MMAP_THRESHOLD), which also stops glibc raising that threshold by itself). 1 on success.
int edge_heap_map_large_blocks(size_t bytes);
/// At most `count` malloc arenas (mallopt(M_ARENA_MAX)); glibc's default is 8 per core. 1 on success.
int edge_heap_limit_arenas(int count);
/// How many malloc arenas exist (the <heap> entries of malloc_info), or -1 if it cannot be read.
int edge_heap_arena_count(void);

#endif
