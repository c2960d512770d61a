/* counters.c - perf_event_open counter groups (see counters.h).
 *
 * Why groups: the kernel schedules a group onto the PMU all-or-nothing, so ratios between its
 * members (instructions/cycles) come from the same stretches of time even when counters are
 * multiplexed; and one read() of the leader with PERF_FORMAT_GROUP returns every member, with the
 * group's TOTAL_TIME_ENABLED/RUNNING for scaling (value * enabled / running).
 */
#define _GNU_SOURCE
#include "counters.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static long perf_event_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group_fd, unsigned long flags)
{
    return syscall(SYS_perf_event_open, attr, pid, cpu, group_fd, flags);
}

static void fill_attr(struct perf_event_attr *attr, uint32_t type, uint64_t config, int leader, int inherit,
                      int grouped, int user_only)
{
    memset(attr, 0, sizeof *attr);
    attr->size = sizeof *attr;
    attr->type = type;
    attr->config = config;
    attr->disabled = leader ? 1 : 0; /* members follow the leader's state */
    attr->inherit = inherit ? 1 : 0;
    attr->exclude_kernel = user_only ? 1 : 0;
    attr->exclude_hv = user_only ? 1 : 0;
    attr->read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING | PERF_FORMAT_ID;
    if (grouped)
        attr->read_format |= PERF_FORMAT_GROUP;
}

/* Open one event. Kernel-mode counting is tried first unless user_only; at
 * perf_event_paranoid >= 2 an unprivileged process gets EACCES (older kernels: EPERM) for it, and
 * the same event opened user-only (exclude_kernel, exclude_hv) is allowed, so retry that way and
 * remember which mode it got: a user-only count of an event that happens in the kernel (context
 * switches, migrations) reads 0 and must not be trusted; the caller decides. */
static int open_one(ae_ctr_group_t *g, int i, int leader, int grouped, int user_only, int group_fd)
{
    struct perf_event_attr attr;
    int first_mode = user_only ? AE_CTR_USER_ONLY : AE_CTR_ALL_MODES;
    for (int mode = first_mode; mode <= AE_CTR_USER_ONLY; mode++) {
        fill_attr(&attr, g->type[i], g->config[i], leader, g->inherit, grouped, mode == AE_CTR_USER_ONLY);
        long fd = perf_event_open(&attr, g->tid, -1, group_fd, PERF_FLAG_FD_CLOEXEC);
        if (fd >= 0) {
            g->fd[i] = (int)fd;
            g->err[i] = 0;
            g->mode[i] = mode;
            uint64_t id = 0;
            if (ioctl((int)fd, PERF_EVENT_IOC_ID, &id) == 0)
                g->id[i] = id;
            return 0;
        }
        g->err[i] = errno;
        if (errno != EACCES && errno != EPERM)
            break;
    }
    return -g->err[i];
}

int ae_ctr_open(ae_ctr_group_t *g, int tid, int inherit, int user_only, const uint32_t *types,
                const uint64_t *configs, int n)
{
    if (n < 1 || n > AE_CTR_MAX_EVENTS)
        return -EINVAL;
    memset(g, 0, sizeof *g);
    g->n = n;
    g->tid = tid;
    g->inherit = inherit;
    g->leader = -1;
    g->grouped = 1;
    for (int i = 0; i < n; i++) {
        g->type[i] = types[i];
        g->config[i] = configs[i];
        g->fd[i] = -1;
    }
    int opened = 0;
    for (int i = 0; i < n; i++) {
        if (g->leader < 0) {
            /* The first event that opens leads. Kernels before 6.12 refuse PERF_FORMAT_GROUP
             * together with inherit (EINVAL): then the events are still one group, but each is
             * read on its own. */
            int rc = open_one(g, i, 1, g->grouped, user_only, -1);
            if (rc == -EINVAL && inherit && g->grouped) {
                g->grouped = 0;
                rc = open_one(g, i, 1, 0, user_only, -1);
            }
            if (rc == 0) {
                g->leader = i;
                opened++;
            }
        } else if (open_one(g, i, 0, g->grouped, user_only, g->fd[g->leader]) == 0) {
            opened++;
        }
    }
    return opened;
}

static int group_ioctl(ae_ctr_group_t *g, unsigned long request)
{
    if (g->leader < 0)
        return 0;
    if (ioctl(g->fd[g->leader], request, PERF_IOC_FLAG_GROUP) != 0)
        return -errno;
    return 0;
}

int ae_ctr_enable(ae_ctr_group_t *g) { return group_ioctl(g, PERF_EVENT_IOC_ENABLE); }
int ae_ctr_disable(ae_ctr_group_t *g) { return group_ioctl(g, PERF_EVENT_IOC_DISABLE); }
int ae_ctr_reset(ae_ctr_group_t *g) { return group_ioctl(g, PERF_EVENT_IOC_RESET); }

int ae_ctr_read(ae_ctr_group_t *g, uint64_t *values, uint64_t *enabled, uint64_t *running)
{
    if (g->leader < 0)
        return 0;
    if (g->grouped) {
        /* nr, time_enabled, time_running, then {value, id} per member */
        uint64_t buf[3 + 2 * AE_CTR_MAX_EVENTS];
        ssize_t got = read(g->fd[g->leader], buf, sizeof buf);
        if (got < 0)
            return -errno;
        if (got < (ssize_t)(3 * sizeof(uint64_t)))
            return -EIO;
        uint64_t nr = buf[0];
        if ((size_t)got < (3 + 2 * nr) * sizeof(uint64_t) || nr > AE_CTR_MAX_EVENTS)
            return -EIO;
        for (uint64_t k = 0; k < nr; k++) {
            uint64_t value = buf[3 + 2 * k], id = buf[4 + 2 * k];
            for (int i = 0; i < g->n; i++) {
                if (g->fd[i] >= 0 && g->id[i] == id) {
                    values[i] = value;
                    enabled[i] = buf[1];
                    running[i] = buf[2];
                    break;
                }
            }
        }
        return 0;
    }
    for (int i = 0; i < g->n; i++) {
        if (g->fd[i] < 0)
            continue;
        uint64_t buf[4]; /* value, time_enabled, time_running, id */
        ssize_t got = read(g->fd[i], buf, sizeof buf);
        if (got < 0)
            return -errno;
        if (got < (ssize_t)(3 * sizeof(uint64_t)))
            return -EIO;
        values[i] = buf[0];
        enabled[i] = buf[1];
        running[i] = buf[2];
    }
    return 0;
}

void ae_ctr_close(ae_ctr_group_t *g)
{
    /* Members first: closing the leader first would promote each member to a singleton group. */
    for (int i = g->n - 1; i >= 0; i--) {
        if (i != g->leader && g->fd[i] >= 0) {
            close(g->fd[i]);
            g->fd[i] = -1;
        }
    }
    if (g->leader >= 0 && g->fd[g->leader] >= 0) {
        close(g->fd[g->leader]);
        g->fd[g->leader] = -1;
    }
    g->leader = -1;
}

int ae_ctr_probe(uint32_t type, uint64_t config, int user_only)
{
    ae_ctr_group_t g;
    int rc = ae_ctr_open(&g, 0, 0, user_only, &type, &config, 1);
    if (rc < 0)
        return -rc;
    int err = g.err[0];
    ae_ctr_close(&g);
    return err;
}

int ae_ctr_paranoid(void)
{
    FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "re");
    if (f == NULL)
        return INT32_MIN;
    int value = INT32_MIN;
    if (fscanf(f, "%d", &value) != 1)
        value = INT32_MIN;
    fclose(f);
    return value;
}

int ae_ctr_open_trigger(int tid, uint32_t type, uint64_t config, uint64_t period, int signo, int user_only)
{
    if (period == 0)
        return -EINVAL;
    struct perf_event_attr attr;
    long fd = -1;
    int first_mode = user_only ? AE_CTR_USER_ONLY : AE_CTR_ALL_MODES;
    for (int mode = first_mode; mode <= AE_CTR_USER_ONLY; mode++) {
        memset(&attr, 0, sizeof attr);
        attr.size = sizeof attr;
        attr.type = type;
        attr.config = config;
        attr.sample_period = period;
        attr.disabled = 1;
        attr.wakeup_events = 1;
        attr.exclude_kernel = mode == AE_CTR_USER_ONLY;
        attr.exclude_hv = mode == AE_CTR_USER_ONLY;
        fd = perf_event_open(&attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
        if (fd >= 0 || (errno != EACCES && errno != EPERM))
            break;
    }
    if (fd < 0)
        return -errno;
    /* The overflow signal goes to the counted thread itself (F_OWNER_TID), so the handler runs on
     * the thread whose stack caused the events; F_SETSIG makes it our signal with si_fd set. */
    struct f_owner_ex owner = {.type = F_OWNER_TID, .pid = tid};
    int flags = fcntl((int)fd, F_GETFL);
    if (fcntl((int)fd, F_SETOWN_EX, &owner) != 0 || fcntl((int)fd, F_SETSIG, signo) != 0 || flags < 0 ||
        fcntl((int)fd, F_SETFL, flags | O_ASYNC) != 0) {
        int err = errno;
        close((int)fd);
        return -err;
    }
    /* Armed for one overflow: the kernel disables the event and signals (POLL_HUP) when it is
     * reached; the handler re-arms it with another REFRESH. */
    if (ioctl((int)fd, PERF_EVENT_IOC_REFRESH, 1) != 0) {
        int err = errno;
        close((int)fd);
        return -err;
    }
    return (int)fd;
}
