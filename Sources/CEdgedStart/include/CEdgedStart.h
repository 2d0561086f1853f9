// What edged sets before main runs: glibc's malloc arenas are capped before any thread can allocate (the
// Swift runtime, Foundation and the cooperative pool start threads before edged's own code runs).
#ifndef CEDGEDSTART_H
#define CEDGEDSTART_H

/// 1 when the arena cap was set before main, 0 when mallopt refused it.
int edged_arenas_capped_at_start(void);

#endif
