/* frames.c - ae_frames_walk() over the per-version layout selected below.
 *
 * Hazards handled here (see ../shared/research/sampling-internals.md section 2):
 *  - a frame being pushed or popped: skip shim/sentinel frames, non-code objects, and frames whose
 *    instruction pointer is before the first traceable instruction or outside the code;
 *  - a corrupt chain: cap the number of links followed and stop on a self-loop.
 * The code object of a complete frame on the current thread's chain is alive at this instant
 * (the frame holds a strong reference), so reading its fields is safe; keeping it alive until
 * the drain resolves it is codehook.c's job.
 */
#include <Python.h>

#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE

#include "frames.h"

#if PY_VERSION_HEX >= 0x030E0000
#error "aether-native supports CPython 3.11-3.13; 3.14 needs frames_py314.h (tagged _PyStackRef)"
#elif PY_VERSION_HEX >= 0x030D0000
#include "frames_py313.h"
#elif PY_VERSION_HEX >= 0x030C0000
#include "frames_py312.h"
#elif PY_VERSION_HEX >= 0x030B0000
#include "frames_py311.h"
#else
#error "aether-native needs CPython 3.11 or newer"
#endif

/* Links followed before giving up: far above any real stack (the recursion limit is 1000 by
 * default), low enough to bound the handler's time on a corrupt chain. */
#define AE_MAX_LINKS 100000

/* Cheap sanity checks before a dereference; the fault guard in handler.c catches the rest. */
static inline int plausible_pointer(const void *p)
{
    return (uintptr_t)p >= 4096 && ((uintptr_t)p & 7) == 0;
}

/* A freed small object keeps its type pointer but pymalloc overwrites its first word (the
 * refcount) with a free-list link, an address far above any real reference count (immortal
 * objects included). Rejecting such values keeps a stale frame from naming a dead code object. */
static inline int plausible_refcount(PyObject *op)
{
    Py_ssize_t refcnt = Py_REFCNT(op);
    return refcnt > 0 && refcnt < ((Py_ssize_t)1 << 40);
}

int ae_frames_walk(PyThreadState *tstate, ae_frame_t *out, int max, int *truncated)
{
    int n = 0;
    int links = 0;
    _PyInterpreterFrame *frame = ae_top_frame(tstate);
    *truncated = 0;
    while (frame != NULL) {
        if (++links > AE_MAX_LINKS || !plausible_pointer(frame)) {
            *truncated = 1;
            break;
        }
        PyObject *code = ae_frame_code(frame);
        if (!ae_frame_is_shim(frame) && plausible_pointer(code) && Py_TYPE(code) == &PyCode_Type &&
            plausible_refcount(code)) {
            PyCodeObject *co = (PyCodeObject *)code;
            _Py_CODEUNIT *first = (_Py_CODEUNIT *)co->co_code_adaptive;
            Py_ssize_t offset = ae_frame_instr(frame) - first;
            int complete = frame->owner == FRAME_OWNED_BY_GENERATOR || offset >= co->_co_firsttraceable;
            if (complete && offset >= 0 && offset < Py_SIZE(co)) {
                if (n < max) {
                    if (out != NULL) {
                        out[n].code = (uintptr_t)co;
                        out[n].lasti = (int32_t)offset;
                        out[n].reserved = 0;
                    }
                    n++;
                } else {
                    *truncated = 1;
                }
            }
        }
        _PyInterpreterFrame *previous = frame->previous;
        if (previous == frame)
            break;
        frame = previous;
    }
    return n;
}

PyThreadState *ae_this_thread_state(void)
{
    /* PyGILState_GetThisThreadState() is a pthread_getspecific() read of the autoTSSkey slot:
     * lock-free and valid while this thread has released the GIL. */
    return PyGILState_GetThisThreadState();
}

int ae_holds_gil(PyThreadState *tstate)
{
    return tstate != NULL && ae_attached_thread_state() == tstate;
}

int ae_interpreter_finalizing(void)
{
    return ae_finalizing();
}
