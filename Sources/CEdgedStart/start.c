#include "CEdgedStart.h"

#include <malloc.h>

static int capped;

// Runs before main: an arena made by a thread that allocated before the cap would stay for the life of the
// process (HeapUsage.limitArenas, called from edged's run(), came too late for threads already running).
__attribute__((constructor)) static void edged_cap_arenas(void) {
    capped = mallopt(M_ARENA_MAX, 2) == 1;
}

int edged_arenas_capped_at_start(void) { return capped; }
