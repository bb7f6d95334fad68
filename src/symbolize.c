/* symbolize.c — code addresses to names for the leak checker, without
 * malloc: "FUNC+0xOFF (MODULE+0xMODOFF)".
 *
 * dl_iterate_phdr finds the loaded object whose PT_LOAD segment holds the
 * address; its file is mapped read-only (os.c) and the symbol covering the
 * address is looked up in its ELF symbol table, .symtab if the file has one,
 * else .dynsym, by a linear scan (only at report time).  A small cache keeps
 * the mapped files, keyed by path and load bias, so a report of hundreds of
 * frames maps each file once; tidei_symbolize_done unmaps them.  Every
 * offset read from a file is checked against the file's size, so a malformed
 * or truncated file gives no names, never a bad read.  A file replaced on
 * disk since it was loaded gives wrong names.
 *
 * Nothing here allocates or uses stdio; the state is static and unlocked, so
 * callers serialize (and it is not async-signal-safe: dl_iterate_phdr takes
 * the loader's lock). */
#include "tide_internal.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

/* A module's file in the cache. */
typedef struct sym_file {
    char path[PATH_MAX];         /* the module's path; "" = slot unused */
    uintptr_t bias;              /* its load bias (dlpi_addr) */
    const char *map;             /* the file, mapped read-only; NULL = no symbols */
    size_t map_bytes;            /* length of the file and of map */
    const Elf64_Shdr *shdrs;     /* its section headers, in map */
    size_t n_shdrs;              /* entries in shdrs */
    const Elf64_Sym *syms;       /* its symbol table (.symtab, else .dynsym), in map */
    size_t n_syms;               /* entries in syms */
    const char *strs;            /* the string table of syms, in map */
    size_t strs_bytes;           /* length of strs */
} sym_file_t;

static sym_file_t sym_files[TIDE_SYM_FILES];
static unsigned sym_next_victim;  /* slot replaced when all are in use */
static char sym_exe[PATH_MAX];    /* the main program's path, once read */

/* What dl_iterate_phdr found for an address. */
typedef struct sym_module {
    uintptr_t pc;                /* the address looked up */
    bool found;                  /* a PT_LOAD segment of a module holds pc */
    uintptr_t bias;              /* that module's load bias */
    char path[PATH_MAX];         /* its name from the loader ("" = main program,
                                    "?" = too long) */
} sym_module_t;

static sym_module_t sym_scratch;  /* the current lookup's (callers serialize) */

/* A bounded output buffer: pos < len, and buf[pos] is always the NUL. */
typedef struct sym_out {
    char *buf;                   /* the caller's buffer */
    size_t len;                  /* its size (0 = write nothing) */
    size_t pos;                  /* bytes written before the NUL */
} sym_out_t;

/* Appends n bytes of s to o, as many as fit. */
static void sym_put(sym_out_t *o, const char *s, size_t n)
{
    if (o->len == 0)
        return;
    while (n-- && o->pos + 1 < o->len)
        o->buf[o->pos++] = *s++;
    o->buf[o->pos] = 0;
}

/* Appends the string s to o. */
static void sym_put_str(sym_out_t *o, const char *s)
{
    sym_put(o, s, strlen(s));
}

/* Appends v to o as 0x and lower-case hex digits. */
static void sym_put_hex(sym_out_t *o, uint64_t v)
{
    char tmp[18];
    size_t n = sizeof tmp;
    do {
        tmp[--n] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    tmp[--n] = 'x';
    tmp[--n] = '0';
    sym_put(o, tmp + n, sizeof tmp - n);
}

/* Copies the string src into dst of cap bytes; false (dst "") if it does
 * not fit. */
static bool sym_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap);
    if (n == cap) {
        dst[0] = 0;
        return false;
    }
    memcpy(dst, src, n + 1);
    return true;
}

/* dl_iterate_phdr callback: stops at the module with a PT_LOAD segment that
 * holds m->pc and records its bias and name.  Runs under the loader's lock,
 * so it only copies. */
static int sym_find_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    sym_module_t *m = arg;
    (void)size;
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (m->pc - start < ph->p_memsz) {
            m->found = true;
            m->bias = info->dlpi_addr;
            const char *name = info->dlpi_name ? info->dlpi_name : "";
            if (!sym_copy(m->path, sizeof m->path, name))
                memcpy(m->path, "?", 2);   /* too long: a name, but no file */
            return 1;
        }
    }
    return 0;
}

/* The main program's path (readlink of its exe in /proc, read once), or "?". */
static const char *sym_exe_path(void)
{
    if (!sym_exe[0]) {
        ssize_t n = tidei_os_readlink_proc("exe", sym_exe, sizeof sym_exe - 1);
        if (n <= 0 || (size_t)n >= sizeof sym_exe - 1) {
            sym_exe[0] = 0;
            return "?";
        }
        sym_exe[n] = 0;
    }
    return sym_exe;
}

/* The bytes [off, off + bytes) of f's file, if they lie inside it and off
 * is a multiple of align; else NULL. */
static const void *sym_at(const sym_file_t *f, uint64_t off, uint64_t bytes, size_t align)
{
    if (off > f->map_bytes || bytes > f->map_bytes - off || off % align != 0)
        return NULL;
    return f->map + off;
}

/* Sets f's symbol table from section header sh (of type type, SHT_SYMTAB or
 * SHT_DYNSYM) and its linked string table; false if sh is not one or either
 * table lies outside the file. */
static bool sym_use_table(sym_file_t *f, const Elf64_Shdr *sh, uint32_t type)
{
    if (sh->sh_type != type || sh->sh_entsize != sizeof(Elf64_Sym) || sh->sh_link >= f->n_shdrs)
        return false;
    const Elf64_Shdr *str = &f->shdrs[sh->sh_link];
    if (str->sh_type != SHT_STRTAB)
        return false;
    const Elf64_Sym *syms = sym_at(f, sh->sh_offset, sh->sh_size, _Alignof(Elf64_Sym));
    const char *strs = sym_at(f, str->sh_offset, str->sh_size, 1);
    if (!syms || !strs || sh->sh_size < sizeof(Elf64_Sym) || str->sh_size == 0)
        return false;
    f->syms = syms;
    f->n_syms = sh->sh_size / sizeof(Elf64_Sym);
    f->strs = strs;
    f->strs_bytes = str->sh_size;
    return true;
}

/* Finds the section headers and the symbol table in f's mapped file (map,
 * map_bytes set); false if it is not a 64-bit little-endian ELF file with a
 * symbol table inside its bounds. */
static bool sym_parse(sym_file_t *f)
{
    f->shdrs = NULL;
    f->n_shdrs = 0;
    f->syms = NULL;
    f->n_syms = 0;
    f->strs = NULL;
    f->strs_bytes = 0;
    const Elf64_Ehdr *eh = sym_at(f, 0, sizeof *eh, 1);
    if (!eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64
        || eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_shentsize != sizeof(Elf64_Shdr))
        return false;
    /* With 0xff00 sections or more, e_shnum is 0 and section 0's sh_size
     * holds the count. */
    const Elf64_Shdr *sh0 = sym_at(f, eh->e_shoff, sizeof *sh0, _Alignof(Elf64_Shdr));
    if (!sh0)
        return false;
    uint64_t n = eh->e_shnum ? eh->e_shnum : sh0->sh_size;
    if (n == 0 || n > f->map_bytes / sizeof(Elf64_Shdr))
        return false;
    f->shdrs = sym_at(f, eh->e_shoff, n * sizeof(Elf64_Shdr), _Alignof(Elf64_Shdr));
    if (!f->shdrs)
        return false;
    f->n_shdrs = (size_t)n;
    for (size_t i = 0; i < f->n_shdrs; i++)
        if (sym_use_table(f, &f->shdrs[i], SHT_SYMTAB))
            return true;
    for (size_t i = 0; i < f->n_shdrs; i++)
        if (sym_use_table(f, &f->shdrs[i], SHT_DYNSYM))
            return true;
    return false;
}

/* Maps f's file (path set) and finds its symbol table; on any failure f is
 * left with no symbols (map NULL) so that the file is not tried again. */
static void sym_load(sym_file_t *f)
{
    f->map = NULL;
    f->map_bytes = 0;
    /* A name without '/' is no file (the vDSO's "linux-vdso.so.1"). */
    if (!strchr(f->path, '/'))
        return;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    void *map = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
        map = tidei_os_map_file(fd, (size_t)st.st_size);
    close(fd);
    if (!map)
        return;
    f->map = map;
    f->map_bytes = (size_t)st.st_size;
    if (!sym_parse(f)) {
        tidei_os_unmap_file(map, f->map_bytes);
        f->map = NULL;
        f->map_bytes = 0;
    }
}

/* Empties cache slot f, unmapping its file. */
static void sym_drop(sym_file_t *f)
{
    if (f->map)
        tidei_os_unmap_file((void *)f->map, f->map_bytes);
    f->map = NULL;
    f->map_bytes = 0;
    f->path[0] = 0;
}

/* The cache slot of the module at bias with path (not ""), loading it into
 * a free slot, or the oldest one, if it is not there. */
static const sym_file_t *sym_file(const char *path, uintptr_t bias)
{
    sym_file_t *free_slot = NULL;
    for (size_t i = 0; i < TIDE_SYM_FILES; i++) {
        sym_file_t *f = &sym_files[i];
        if (!f->path[0]) {
            if (!free_slot)
                free_slot = f;
        } else if (f->bias == bias && strcmp(f->path, path) == 0) {
            return f;
        }
    }
    sym_file_t *f = free_slot;
    if (!f) {
        f = &sym_files[sym_next_victim];
        sym_next_victim = (sym_next_victim + 1) % TIDE_SYM_FILES;
        sym_drop(f);
    }
    if (!sym_copy(f->path, sizeof f->path, path))
        return NULL;
    f->bias = bias;
    sym_load(f);
    return f;
}

/* The name of symbol s in f and its length in *n (the string table may end
 * without a NUL), or NULL if it has none. */
static const char *sym_name(const sym_file_t *f, const Elf64_Sym *s, size_t *n)
{
    if (s->st_name == 0 || s->st_name >= f->strs_bytes)
        return NULL;
    const char *name = f->strs + s->st_name;
    *n = strnlen(name, f->strs_bytes - s->st_name);
    return *n ? name : NULL;
}

/* How much a symbol's name is worth as the name of its address, lower is
 * better: GLOBAL before WEAK before LOCAL, then fewer leading underscores
 * (so that of write and its alias __write, write is shown). */
static size_t sym_rank(const sym_file_t *f, const Elf64_Sym *s)
{
    unsigned bind = ELF64_ST_BIND(s->st_info);
    size_t n = 0, u = 0;
    const char *name = sym_name(f, s, &n);
    while (name && u < n && name[u] == '_')
        u++;
    return (bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2) * 1024 + (u < 1024 ? u : 1023);
}

/* True if a covering symbol a names the address better than b: the smaller
 * (the innermost), then the better ranked. */
static bool sym_better(const sym_file_t *f, const Elf64_Sym *a, const Elf64_Sym *b)
{
    if (a->st_size != b->st_size)
        return a->st_size < b->st_size;
    return sym_rank(f, a) < sym_rank(f, b);
}

/* True if module offset off lies in section shndx of f. */
static bool sym_in_section(const sym_file_t *f, uint16_t shndx, uint64_t off)
{
    if (shndx == SHN_UNDEF || shndx >= f->n_shdrs)
        return false;
    const Elf64_Shdr *sh = &f->shdrs[shndx];
    return off >= sh->sh_addr && off - sh->sh_addr < sh->sh_size;
}

/* The function symbol of f that covers module offset off (st_value <= off <
 * st_value + st_size: STT_FUNC, STT_GNU_IFUNC, or STT_NOTYPE with a size);
 * failing that, the nearest size-0 function symbol before off in the same
 * section with no sized function ending between them; else NULL. */
static const Elf64_Sym *sym_lookup(const sym_file_t *f, uint64_t off)
{
    const Elf64_Sym *best = NULL;     /* the best covering symbol */
    const Elf64_Sym *best0 = NULL;    /* the nearest size-0 one before off */
    uint64_t end_before = 0;          /* the highest end <= off of a sized one */
    size_t n;
    for (size_t i = 0; i < f->n_syms; i++) {
        const Elf64_Sym *s = &f->syms[i];
        unsigned type = ELF64_ST_TYPE(s->st_info);
        if (s->st_shndx == SHN_UNDEF || s->st_value > off || !sym_name(f, s, &n))
            continue;
        if (type != STT_FUNC && type != STT_GNU_IFUNC && !(type == STT_NOTYPE && s->st_size > 0))
            continue;
        if (s->st_size == 0) {
            if (!best0 || s->st_value > best0->st_value)
                best0 = s;
        } else if (off - s->st_value < s->st_size) {
            if (!best || sym_better(f, s, best))
                best = s;
        } else if (s->st_value + s->st_size > end_before) {
            end_before = s->st_value + s->st_size;
        }
    }
    if (best)
        return best;
    if (best0 && best0->st_value >= end_before && sym_in_section(f, best0->st_shndx, off))
        return best0;
    return NULL;
}

void tidei_symbolize(uintptr_t pc, char *buf, size_t len)
{
    sym_out_t o = { buf, len, 0 };
    sym_put(&o, "", 0);
    sym_module_t *m = &sym_scratch;
    m->pc = pc;
    m->found = false;
    dl_iterate_phdr(sym_find_module, m);
    if (!m->found) {
        sym_put_hex(&o, pc);
        return;
    }
    const char *path = m->path[0] ? m->path : sym_exe_path();
    uint64_t off = pc - m->bias;
    const sym_file_t *f = sym_file(path, m->bias);
    const Elf64_Sym *s = f && f->map ? sym_lookup(f, off) : NULL;
    if (s) {
        size_t n = 0;
        const char *name = sym_name(f, s, &n);
        sym_put(&o, name, n);
        sym_put_str(&o, "+");
        sym_put_hex(&o, off - s->st_value);
        sym_put_str(&o, " ");
    }
    sym_put_str(&o, "(");
    sym_put_str(&o, path);
    sym_put_str(&o, "+");
    sym_put_hex(&o, off);
    sym_put_str(&o, ")");
}

void tidei_symbolize_done(void)
{
    for (size_t i = 0; i < TIDE_SYM_FILES; i++)
        sym_drop(&sym_files[i]);
    sym_next_victim = 0;
}

/* ---- what a foreign pointer is, for the misuse report ---- */

/* Frames walked looking for the call into tide. */
typedef struct caller_walk {
    uintptr_t caller;            /* return address above the outermost tide entry point so far (0: none) */
    bool take_next;              /* the previous frame was a tide entry point */
    int depth;                   /* frames seen */
} caller_walk_t;

static _Unwind_Reason_Code caller_step(struct _Unwind_Context *ctx, void *arg)
{
    caller_walk_t *w = arg;
    uintptr_t ip = tidei_unwind_ip(ctx);
    if (!ip || ++w->depth > 64)
        return _URC_END_OF_STACK;
    if (w->take_next)
        w->caller = ip;
    uintptr_t fn = tidei_unwind_region_start(ctx);
    /* free's slow paths are tail calls: only their frame is on the stack */
    w->take_next = tidei_free_is_entry(fn);
    for (size_t i = 0; i < tidei_override_n_entries; i++)
        if ((uintptr_t)tidei_override_entries[i].fn == fn)
            w->take_next = true;
    return _URC_NO_REASON;
}

/* Appends to o the mapping of /proc/self/maps that holds a: "[heap]",
 * "[stack]", a file's path, or "" for an anonymous one; false if none
 * does (or the file cannot be read). */
static bool sym_mapping_of(uintptr_t a, sym_out_t *o)
{
    int fd = tidei_os_open_proc("maps", 0);
    if (fd < 0)
        return false;
    char buf[4096 + 1];
    size_t have = 0;
    bool found = false, eof = false;
    while (!found) {
        ssize_t r = eof ? 0 : read(fd, buf + have, sizeof buf - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            eof = true;
        else
            have += (size_t)r;
        buf[have] = 0;
        char *nl = memchr(buf, '\n', have);
        if (!nl && !eof && have < sizeof buf - 1)
            continue;          /* the line is not complete yet */
        if (!nl && have == 0)
            break;
        char *end = nl ? nl : buf + have;
        *end = 0;
        /* "start-end perms offset dev inode   path" */
        char *s = buf;
        uintptr_t lo = 0, hi = 0;
        while (*s && *s != '-')
            lo = lo * 16 + (uintptr_t)(*s <= '9' ? *s - '0' : (*s | 0x20) - 'a' + 10), s++;
        if (*s == '-')
            s++;
        while (*s && *s != ' ')
            hi = hi * 16 + (uintptr_t)(*s <= '9' ? *s - '0' : (*s | 0x20) - 'a' + 10), s++;
        if (a >= lo && a < hi) {
            for (int field = 0; field < 4 && *s; field++) {   /* perms, offset, dev, inode */
                while (*s == ' ')
                    s++;
                while (*s && *s != ' ')
                    s++;
            }
            while (*s == ' ')
                s++;
            sym_put_str(o, s);
            found = true;
        }
        size_t used = nl ? (size_t)(nl + 1 - buf) : have;   /* a line too long for buf is dropped */
        memmove(buf, buf + used, have - used);
        have -= used;
        if (eof && have == 0)
            break;
    }
    close(fd);
    return found;
}

void tidei_symbolize_describe_foreign(const char *op, const void *p, char *buf, size_t len)
{
    sym_out_t o = { buf, len, 0 };
    sym_put(&o, "", 0);
    caller_walk_t w = { 0, false, 0 };
    if (tidei_unwind_for_report())  /* loaded here if need be: the report ends in abort() */
        tidei_unwind_backtrace(caller_step, &w);
    if (w.caller) {
        sym_put_str(&o, "; ");
        sym_put_str(&o, op);
        sym_put_str(&o, " called from ");
        size_t at = o.pos;
        tidei_symbolize(w.caller, o.buf + at, o.len - at);
        o.pos += strlen(o.buf + at);
    }
    sym_put_str(&o, "; the address is ");
    size_t at = o.pos;
    sym_put_str(&o, "in ");
    size_t path_at = o.pos;
    if (!sym_mapping_of((uintptr_t)p, &o)) {
        o.pos = at;
        sym_put_str(&o, "not mapped");
    } else if (o.pos == path_at) {
        sym_put_str(&o, "an anonymous mapping");
    } else if (strcmp(o.buf + path_at, "[heap]") == 0) {
        sym_put_str(&o, ", glibc's malloc's heap");
    }
}
