/* gil.c - the address range of CPython's GIL state (see gil.h). Py_BUILD_CORE for the whole file:
 * the layout of PyInterpreterState (3.12+) and _PyRuntime (3.11) is internal. Only the address and
 * the size of struct _gil_runtime_state are used, never its fields. */
#define Py_BUILD_CORE 1
#include <Python.h>

#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"

#include "gil.h"

int ae_gil_range(uintptr_t *lo, uintptr_t *hi)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyInterpreterState *interp = PyInterpreterState_Main();
    struct _gil_runtime_state *gil = interp != NULL ? interp->ceval.gil : NULL;
#else
    struct _gil_runtime_state *gil = &_PyRuntime.ceval.gil;
#endif
    if (gil == NULL)
        return -1;
    *lo = (uintptr_t)gil;
    *hi = (uintptr_t)gil + sizeof *gil;
    return 0;
}
