#define _GNU_SOURCE
#include "CEdgeSystem.h"

#include <errno.h>
#include <linux/serial.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timex.h>

// The kernel ABI we rely on for TIOCSRS485: flags first, then the two delays.
_Static_assert(offsetof(struct serial_rs485, flags) == 0, "serial_rs485.flags offset");
_Static_assert(offsetof(struct serial_rs485, delay_rts_before_send) == 4, "serial_rs485 layout");
_Static_assert(offsetof(struct serial_rs485, delay_rts_after_send) == 8, "serial_rs485 layout");

int edge_serial_set_rs485(int fd, int enabled, int rts_on_send, int rts_after_send,
                          uint32_t delay_before_ms, uint32_t delay_after_ms) {
    struct serial_rs485 conf;
    memset(&conf, 0, sizeof conf);
    if (enabled) {
        conf.flags |= SER_RS485_ENABLED;
        if (rts_on_send) conf.flags |= SER_RS485_RTS_ON_SEND;
        if (rts_after_send) conf.flags |= SER_RS485_RTS_AFTER_SEND;
        conf.delay_rts_before_send = delay_before_ms;
        conf.delay_rts_after_send = delay_after_ms;
    }
    int rc;
    do {
        rc = ioctl(fd, TIOCSRS485, &conf);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? errno : 0;
}

int edge_peer_credentials(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return errno;
    *pid = cred.pid; *uid = cred.uid; *gid = cred.gid;
    return 0;
}

int edge_clock_synchronized(void) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    int state = ntp_adjtime(&tx);
    if (state < 0) return -errno;   /* e.g. EPERM where a seccomp filter denies adjtimex: unknown */
    return state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
}

void edge_heap_usage(uint64_t *in_use, uint64_t *held) {
    struct mallinfo2 mi = mallinfo2();
    *in_use = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
    *held = (uint64_t)mi.arena + (uint64_t)mi.hblkhd;
}

int edge_heap_map_large_blocks(size_t bytes) {
    return mallopt(M_MMAP_THRESHOLD, (int)bytes);
}

int edge_heap_limit_arenas(int count) {
    return mallopt(M_ARENA_MAX, count);
}

int edge_heap_arena_count(void) {
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (out == NULL) return -1;
    int ok = malloc_info(0, out) == 0;
    fclose(out);
    int count = 0;
    for (const char *p = text; ok && p != NULL && (p = strstr(p, "<heap nr=")) != NULL; p++) count++;
    free(text);
    return ok ? count : -1;
}
