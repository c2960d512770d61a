/* got.c - see got.h. Linux x86-64 (ELF64, RELA relocations).
 *
 * Hazards, and why they are fine:
 *  - Other threads call through a slot while it is rewritten: the slot is an aligned 8-byte
 *    word, so a caller sees either the old or the new target, both valid functions.
 *  - A caller that loaded the slot just before unpatching calls the hook afterwards: the hooks
 *    stay in memory and are inert once tracking stopped.
 *  - mprotect of a RELRO page: it is made writable only for the write, then read-only again;
 *    pages outside RELRO are left as they were (they were writable: lazy-binding .got.plt).
 *  - dlopen called through our hook resolves relative names as if called from our object
 *    (RUNPATH/$ORIGIN of the caller are not honoured); the interpreter's dlopen calls (imports)
 *    pass absolute paths, and extension modules' own dlopen slots are not hooked.
 *  - No allocation through any hooked function here: records live in an anonymous mapping.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "got.h"

typedef struct {
    uintptr_t base; /* object load base (dlpi_addr) */
    void **slot;
    void *original;
    int relro;
} ae_got_record_t;

#define AE_GOT_MAX_RECORDS 65536
#define AE_GOT_MAX_OBJECTS 4096

static pthread_mutex_t got_mutex = PTHREAD_MUTEX_INITIALIZER;
static ae_got_record_t *records; /* mapped once, AE_GOT_MAX_RECORDS entries */
static size_t nrecords;
static uintptr_t seen[AE_GOT_MAX_OBJECTS]; /* bases of objects already visited in this patching */
static size_t nseen;
static int patching;
static const ae_got_hook_t *hooks_full, *hooks_interp;
static size_t nhooks_full, nhooks_interp;
static const char *self_name;

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int is_skipped(const char *name)
{
    const char *b = base_name(name);
    return strncmp(b, "ld-linux", 8) == 0 || strncmp(b, "ld64.so", 7) == 0 ||
           strncmp(b, "linux-vdso", 10) == 0 || strncmp(b, "linux-gate", 10) == 0 ||
           strncmp(b, "libc.so", 7) == 0 || (self_name != NULL && strcmp(name, self_name) == 0);
}

static int is_interpreter(const char *name)
{
    return name[0] == '\0' || strstr(base_name(name), "libpython") != NULL;
}

static int set_protection(void *addr, int prot)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)addr & ~((uintptr_t)page - 1);
    return mprotect((void *)start, (size_t)page, prot);
}

static int write_slot(void **slot, void *value, int relro)
{
    if (set_protection(slot, PROT_READ | PROT_WRITE) != 0)
        return -1;
    __atomic_store_n(slot, value, __ATOMIC_RELEASE);
    if (relro)
        set_protection(slot, PROT_READ);
    return 0;
}

/* d_ptr values are relocated in place by glibc on x86-64; relative on some other loaders. */
static uintptr_t dyn_ptr(uintptr_t value, uintptr_t base)
{
    return value < base ? value + base : value;
}

static void patch_relocs(struct dl_phdr_info *info, const ElfW(Rela) *rela, size_t count,
                         const ElfW(Sym) *symtab, const char *strtab, uintptr_t relro_lo,
                         uintptr_t relro_hi, const ae_got_hook_t *hooks, size_t nhooks)
{
    for (size_t i = 0; i < count; i++) {
        unsigned long type = ELF64_R_TYPE(rela[i].r_info);
        if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
            continue;
        const char *name = strtab + symtab[ELF64_R_SYM(rela[i].r_info)].st_name;
        for (size_t h = 0; h < nhooks; h++) {
            if (strcmp(name, hooks[h].name) != 0)
                continue;
            void **slot = (void **)(info->dlpi_addr + rela[i].r_offset);
            if (*slot == hooks[h].replacement || nrecords >= AE_GOT_MAX_RECORDS)
                break;
            int relro = (uintptr_t)slot >= relro_lo && (uintptr_t)slot < relro_hi;
            void *original = *slot;
            if (write_slot(slot, hooks[h].replacement, relro) == 0) {
                records[nrecords].base = info->dlpi_addr;
                records[nrecords].slot = slot;
                records[nrecords].original = original;
                records[nrecords].relro = relro;
                nrecords++;
            }
            break;
        }
    }
}

static int patch_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    for (size_t i = 0; i < nseen; i++)
        if (seen[i] == info->dlpi_addr)
            return 0;
    if (nseen < AE_GOT_MAX_OBJECTS)
        seen[nseen++] = info->dlpi_addr;
    if (is_skipped(name))
        return 0;
    const ae_got_hook_t *hooks = is_interpreter(name) ? hooks_interp : hooks_full;
    size_t nhooks = is_interpreter(name) ? nhooks_interp : nhooks_full;
    const ElfW(Dyn) *dyn = NULL;
    uintptr_t relro_lo = 0, relro_hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
        else if (ph->p_type == PT_GNU_RELRO) {
            relro_lo = info->dlpi_addr + ph->p_vaddr;
            relro_hi = relro_lo + ph->p_memsz;
        }
    }
    if (dyn == NULL || nhooks == 0)
        return 0;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const ElfW(Rela) *rela = NULL, *jmprel = NULL;
    size_t relasz = 0, pltrelsz = 0;
    int pltrel_is_rela = 1;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_SYMTAB:
            symtab = (const ElfW(Sym) *)dyn_ptr(dyn->d_un.d_ptr, info->dlpi_addr);
            break;
        case DT_STRTAB:
            strtab = (const char *)dyn_ptr(dyn->d_un.d_ptr, info->dlpi_addr);
            break;
        case DT_RELA:
            rela = (const ElfW(Rela) *)dyn_ptr(dyn->d_un.d_ptr, info->dlpi_addr);
            break;
        case DT_RELASZ:
            relasz = dyn->d_un.d_val;
            break;
        case DT_JMPREL:
            jmprel = (const ElfW(Rela) *)dyn_ptr(dyn->d_un.d_ptr, info->dlpi_addr);
            break;
        case DT_PLTRELSZ:
            pltrelsz = dyn->d_un.d_val;
            break;
        case DT_PLTREL:
            pltrel_is_rela = dyn->d_un.d_val == DT_RELA;
            break;
        default:
            break;
        }
    }
    if (symtab == NULL || strtab == NULL)
        return 0;
    if (jmprel != NULL && pltrel_is_rela)
        patch_relocs(info, jmprel, pltrelsz / sizeof(ElfW(Rela)), symtab, strtab, relro_lo,
                     relro_hi, hooks, nhooks);
    if (rela != NULL)
        patch_relocs(info, rela, relasz / sizeof(ElfW(Rela)), symtab, strtab, relro_lo, relro_hi,
                     hooks, nhooks);
    return 0;
}

/* A fork while another thread patches (a dlopen) must not leave the child's mutex held. */
static void got_prepare(void)
{
    pthread_mutex_lock(&got_mutex);
}

static void got_release(void)
{
    pthread_mutex_unlock(&got_mutex);
}

int ae_got_patch_all(const ae_got_hook_t *full, size_t nfull, const ae_got_hook_t *interp,
                     size_t ninterp)
{
    static int atfork_done;
    if (!atfork_done && pthread_atfork(got_prepare, got_release, got_release) == 0)
        atfork_done = 1; /* callers hold the GIL: no race on the flag */
    pthread_mutex_lock(&got_mutex);
    if (records == NULL) {
        void *p = mmap(NULL, AE_GOT_MAX_RECORDS * sizeof(ae_got_record_t), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            pthread_mutex_unlock(&got_mutex);
            return -ENOMEM;
        }
        records = p;
    }
    if (self_name == NULL) {
        Dl_info self;
        if (dladdr((void *)&ae_got_patch_all, &self) != 0)
            self_name = self.dli_fname;
    }
    hooks_full = full, nhooks_full = nfull;
    hooks_interp = interp, nhooks_interp = ninterp;
    size_t before = nrecords;
    nseen = 0;
    patching = 1;
    dl_iterate_phdr(patch_object, NULL);
    int patched = (int)(nrecords - before);
    pthread_mutex_unlock(&got_mutex);
    return patched;
}

void ae_got_patch_new(void)
{
    pthread_mutex_lock(&got_mutex);
    if (patching)
        dl_iterate_phdr(patch_object, NULL);
    pthread_mutex_unlock(&got_mutex);
}

static int still_loaded(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t *base = data;
    if (info->dlpi_addr == *base) {
        *base = 0;
        return 1;
    }
    return 0;
}

int ae_got_unpatch_all(void)
{
    pthread_mutex_lock(&got_mutex);
    int restored = 0;
    uintptr_t checked_base = 0;
    int loaded = 0;
    /* Newest first, so a slot patched twice (never, but cheap to be safe) ends at its original. */
    for (size_t i = nrecords; i-- > 0;) {
        ae_got_record_t *r = &records[i];
        if (r->base != checked_base || i == nrecords - 1) {
            uintptr_t probe = r->base;
            dl_iterate_phdr(still_loaded, &probe);
            loaded = probe == 0 || r->base == 0; /* base 0: a non-PIE main program */
            checked_base = r->base;
        }
        if (loaded && write_slot(r->slot, r->original, r->relro) == 0)
            restored++;
    }
    nrecords = 0;
    nseen = 0;
    patching = 0;
    pthread_mutex_unlock(&got_mutex);
    return restored;
}

void ae_got_counts(size_t *objects, size_t *slots)
{
    pthread_mutex_lock(&got_mutex);
    size_t n = 0;
    for (size_t i = 0; i < nrecords; i++)
        if (i == 0 || records[i].base != records[i - 1].base)
            n++;
    *objects = n;
    *slots = nrecords;
    pthread_mutex_unlock(&got_mutex);
}
