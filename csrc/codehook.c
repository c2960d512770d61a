/* codehook.c - see codehook.h. */
#include <Python.h>

#include "codehook.h"

typedef struct {
    PyObject *qualname; /* strong */
    PyObject *filename; /* strong */
    int first_line;
} ae_tomb_t;

static ae_ring_t *hook_ring;
static ae_tomb_t *tombs;
static size_t tomb_count, tomb_capacity;
static uint64_t rescued;

#if PY_VERSION_HEX >= 0x030C0000
static int watcher_id = -1;
#else
static destructor original_code_dealloc;
#endif

/* Append a tombstone for `co`; returns its index, or (size_t)-1 when memory ran out. Uses the raw
 * allocator: it does not run the garbage collector, so no other code object dies under us. */
static size_t tomb_add(PyCodeObject *co)
{
    if (tomb_count == tomb_capacity) {
        size_t capacity = tomb_capacity ? tomb_capacity * 2 : 64;
        ae_tomb_t *grown = PyMem_RawRealloc(tombs, capacity * sizeof(ae_tomb_t));
        if (grown == NULL)
            return (size_t)-1;
        tombs = grown;
        tomb_capacity = capacity;
    }
    ae_tomb_t *t = &tombs[tomb_count];
    t->qualname = Py_NewRef(co->co_qualname);
    t->filename = Py_NewRef(co->co_filename);
    t->first_line = co->co_firstlineno;
    return tomb_count++;
}

static void code_dying(PyCodeObject *co)
{
    if (hook_ring == NULL)
        return;
    uintptr_t address = (uintptr_t)co;
    size_t tomb = (size_t)-1;
    uint64_t pos = atomic_load_explicit(&hook_ring->tail, memory_order_acquire);
    ae_record_t *rec;
    /* Only published records are scanned. A record still being written by a handler on another
     * CPU cannot name this object: its frame holds a strong reference until the handler returns. */
    while ((rec = ae_ring_peek(hook_ring, &pos)) != NULL) {
        if (atomic_load_explicit(&rec->state, memory_order_acquire) == AE_REC_SAMPLE) {
            for (uint16_t i = 0; i < rec->depth; i++) {
                ae_frame_t *frame = &rec->frames[i];
                if (frame->code != address)
                    continue;
                if (tomb == (size_t)-1) {
                    tomb = tomb_add(co);
                    rescued++;
                }
                /* Without room for a tombstone the entry becomes ~0 (odd, out of range): the
                 * drain reports "<unknown>" rather than a wrong name. */
                int line = PyCode_Addr2Line(co, frame->lasti * 2 /* bytes per code unit */);
                if (line < 0) /* an instruction with no line (a generator's prologue): its def */
                    line = co->co_firstlineno;
                frame->lasti = line;
                frame->code = tomb == (size_t)-1 ? ~(uintptr_t)0 : ((uintptr_t)tomb << 1) | 1u;
            }
        }
        pos += rec->size;
    }
}

#if PY_VERSION_HEX >= 0x030C0000
static int code_watcher(PyCodeEvent event, PyCodeObject *co)
{
    if (event == PY_CODE_EVENT_DESTROY)
        code_dying(co);
    return 0;
}
#else
static void hooked_code_dealloc(PyObject *op)
{
    code_dying((PyCodeObject *)op);
    original_code_dealloc(op);
}
#endif

int ae_codehook_install(ae_ring_t *ring)
{
    hook_ring = ring;
#if PY_VERSION_HEX >= 0x030C0000
    if (watcher_id < 0) {
        watcher_id = PyCode_AddWatcher(code_watcher);
        if (watcher_id < 0) {
            hook_ring = NULL;
            return -1;
        }
    }
#else
    if (PyCode_Type.tp_dealloc != hooked_code_dealloc) {
        original_code_dealloc = PyCode_Type.tp_dealloc;
        PyCode_Type.tp_dealloc = hooked_code_dealloc;
    }
#endif
    return 0;
}

void ae_codehook_uninstall(void)
{
    hook_ring = NULL;
#if PY_VERSION_HEX >= 0x030C0000
    if (watcher_id >= 0) {
        PyCode_ClearWatcher(watcher_id);
        watcher_id = -1;
    }
#else
    /* Restore only if nobody interposed after us; otherwise stay (inert: hook_ring is NULL). */
    if (PyCode_Type.tp_dealloc == hooked_code_dealloc)
        PyCode_Type.tp_dealloc = original_code_dealloc;
#endif
}

size_t ae_tomb_count(void)
{
    return tomb_count;
}

int ae_tomb_get(size_t index, PyObject **qualname, PyObject **filename, int *first_line)
{
    if (index >= tomb_count)
        return -1;
    *qualname = tombs[index].qualname;
    *filename = tombs[index].filename;
    *first_line = tombs[index].first_line;
    return 0;
}

void ae_tomb_clear(void)
{
    for (size_t i = 0; i < tomb_count; i++) {
        Py_DECREF(tombs[i].qualname);
        Py_DECREF(tombs[i].filename);
    }
    tomb_count = 0;
    rescued = 0;
}

uint64_t ae_codehook_rescued(void)
{
    return rescued;
}
