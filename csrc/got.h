/* got.h - redirect calls that loaded shared objects make through their GOT (memray's approach to
 * native allocation tracking: no LD_PRELOAD, works on a running interpreter, undone on stop).
 *
 * For every loaded object (dl_iterate_phdr) the patcher walks the dynamic relocations (DT_JMPREL
 * and DT_RELA: JUMP_SLOT and GLOB_DAT entries), and for each one naming a hooked function it
 * saves the slot's value and writes the replacement, making a RELRO page writable for the write
 * and read-only again after it. Objects fall in three groups:
 *  - skipped: ld.so, the vDSO, libc (its internal calls do not go through the GOT anyway) and the
 *    object holding the hooks themselves (their calls to malloc must reach libc);
 *  - "interpreter" objects (the main program and libpython): only `interp` hooks (dlopen), since
 *    their allocations are already seen through the PyMem hooks;
 *  - everything else (extension modules and the libraries they pulled in): the `full` hooks.
 * Objects loaded later are patched from the dlopen hook. Unpatching restores every saved slot of
 * the objects still loaded (an object dlclose'd meanwhile is skipped: its GOT is gone).
 */
#ifndef AETHER_GOT_H
#define AETHER_GOT_H

#include <stddef.h>

typedef struct {
    const char *name;
    void *replacement;
} ae_got_hook_t;

/* Patch all loaded objects; remembers the hook lists for ae_got_patch_new. Serialised by an
 * internal mutex. Returns the number of slots patched, or -errno. */
int ae_got_patch_all(const ae_got_hook_t *full, size_t nfull, const ae_got_hook_t *interp,
                     size_t ninterp);
/* Patch objects loaded since the last pass (called from the dlopen hook); no-op when unpatched. */
void ae_got_patch_new(void);
/* Restore every slot; returns the number restored. */
int ae_got_unpatch_all(void);
/* Objects and slots currently patched. */
void ae_got_counts(size_t *objects, size_t *slots);

#endif
