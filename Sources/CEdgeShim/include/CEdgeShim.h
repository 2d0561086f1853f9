// Typed wrappers for C APIs that Swift cannot call directly: variadic functions
// (curl_easy_setopt, curl_easy_getinfo) and ioctl requests built from macros (TIOCSRS485).
#ifndef CEDGESHIM_H
#define CEDGESHIM_H

#include <stdint.h>
#include <curl/curl.h>

// ---- libcurl -------------------------------------------------------------
CURLcode edge_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode edge_curl_setopt_ptr(CURL *handle, CURLoption option, void *value);
CURLcode edge_curl_setopt_str(CURL *handle, CURLoption option, const char *value);
CURLcode edge_curl_setopt_off(CURL *handle, CURLoption option, int64_t value);
CURLcode edge_curl_setopt_writefunction(CURL *handle,
    size_t (*fn)(char *ptr, size_t size, size_t nmemb, void *userdata));
CURLcode edge_curl_setopt_headerfunction(CURL *handle,
    size_t (*fn)(char *ptr, size_t size, size_t nmemb, void *userdata));
CURLcode edge_curl_getinfo_long(CURL *handle, CURLINFO info, long *out);
CURLcode edge_curl_getinfo_double(CURL *handle, CURLINFO info, double *out);
CURLcode edge_curl_getinfo_off(CURL *handle, CURLINFO info, int64_t *out);
/// Non-zero when libcurl was built against OpenSSL (the Debian "openssl flavour").
int edge_curl_uses_openssl(void);

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
