/* sampler.h - start/stop the sampling machinery; the API the Cython binding uses. */
#ifndef AETHER_SAMPLER_H
#define AETHER_SAMPLER_H

#include <stdint.h>

#include "ring.h"

typedef struct {
    int mode;             /* AE_MODE_CPU or AE_MODE_WALL (state.h) */
    uint64_t interval_ns; /* mean tick period; each tick is jittered +-25% against aliasing */
    int max_depth;        /* frames kept per sample, innermost first (1..AE_MAX_DEPTH) */
    int signo;            /* the signal delivered to sampled threads */
    uint64_t ring_bytes;  /* size of the record ring */
    /* AE_MODE_TRIGGER only: the perf event (type, config) and its period in events */
    uint32_t trigger_type;
    uint64_t trigger_config;
    uint64_t trigger_period;
    int trigger_user_only;
} ae_config_t;

typedef struct {
    uint64_t ticks, late_ticks, signals_sent, signals_failed, idle_records, foreign_signals,
        stale_signals, no_thread_state, lost_weight_ns, blocked_skips, walk_faults, wakeups_seen, handler_ns,
        threads_seen, threads_untracked, records_written, records_dropped, trigger_open_failed;
} ae_stats_t;

/* Install the handler (once), reset the ring and thread table, take the thread baseline and start
 * the sampler thread. 0, or -errno (-EBUSY when already running). Call with the GIL held. */
int ae_sampler_start(const ae_config_t *config);
/* Stop the sampler thread and wait until no handler is recording. 0, or -errno (-ESRCH when not
 * running). May be called without the GIL. */
int ae_sampler_stop(void);
int ae_sampler_running(void);
ae_ring_t *ae_sampler_ring(void);
void ae_sampler_stats(ae_stats_t *out);
/* Never sample this kernel thread (the drain thread); persists across sessions until cleared. */
int ae_sampler_exclude(int tid);
void ae_sampler_unexclude(int tid);
/* CLOCK_MONOTONIC at the last start, in ns. */
uint64_t ae_sampler_start_ns(void);
uint64_t ae_clock_ns(void);
int ae_current_tid(void);

#endif
