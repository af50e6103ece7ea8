// CSpawn: the C side of spawning. Every function that runs between fork and exec
// is async-signal-safe. All symbols are prefixed cspawn_.
#ifndef CSPAWN_H
#define CSPAWN_H
#include <sys/types.h>
#include <signal.h>

int cspawn_placeholder(void);

#endif
