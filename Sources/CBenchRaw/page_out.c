#define _GNU_SOURCE
#include "CBenchRaw.h"
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

int raw_page_out(int pid) {
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) return -errno;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *maps = fopen(path, "r");
    if (maps == NULL) { int e = errno; close(pidfd); return -e; }
    char line[4096];
    int advised = 0, error = 0;
    while (fgets(line, sizeof line, maps) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) != 2) continue;
        struct iovec range = { (void *)lo, hi - lo };
        if (syscall(SYS_process_madvise, pidfd, &range, 1, MADV_PAGEOUT, 0) >= 0) advised++;
        else if (errno == EPERM || errno == ENOSYS) { error = errno; break; }
        // Other errors (EINVAL on [vsyscall], locked or special mappings) leave that mapping alone.
    }
    fclose(maps);
    close(pidfd);
    return error != 0 ? -error : advised;
}
