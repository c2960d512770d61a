/* frames_py313.h - CPython 3.13 frame layout (internal/pycore_frame.h).
 *   innermost:  tstate->current_frame (_PyCFrame is gone)
 *   code:       f_executable, a code object or None (None on shim frames)
 *   position:   instr_ptr, the instruction executing or about to begin
 *   C entries:  shim frames with owner == FRAME_OWNED_BY_CSTACK
 */
static inline _PyInterpreterFrame *ae_top_frame(PyThreadState *tstate)
{
    return tstate->current_frame;
}

static inline int ae_frame_is_shim(_PyInterpreterFrame *frame)
{
    return frame->owner == FRAME_OWNED_BY_CSTACK;
}

static inline PyObject *ae_frame_code(_PyInterpreterFrame *frame)
{
    return frame->f_executable;
}

static inline _Py_CODEUNIT *ae_frame_instr(_PyInterpreterFrame *frame)
{
    return frame->instr_ptr;
}

static inline PyThreadState *ae_attached_thread_state(void)
{
    return PyThreadState_GetUnchecked();
}

static inline int ae_finalizing(void)
{
    return Py_IsFinalizing();
}
