/* unit/symbolize.c — the leak checker's symbolizer (symbolize.c): a code
 * address becomes "FUNC+0xOFF (MODULE+0xMODOFF)" from the symbol table of
 * the module's file (.symtab of this test, built with -g and not stripped;
 * .dynsym of the stripped libc), "(MODULE+0xMODOFF)" where no function
 * covers it, "0xPC" outside every module; the output is always
 * NUL-terminated; the cache can be emptied and filled again; and a damaged
 * or truncated ELF file gives no names and no bad read (run under valgrind
 * or ASan to see the reads). */
#include "unit.h"

#include <link.h>

int symtest_global(int x);

/* A function of the test with external linkage. */
__attribute__((noinline)) int symtest_global(int x)
{
    return x * 3 + 1;
}

/* A static function (its address is taken, so GCC keeps its name), more
 * than 5 bytes long. */
__attribute__((noinline)) static int symtest_static(int x)
{
    volatile int v = x;
    for (int i = 0; i < 4; i++)
        v = v * 5 + 2;
    return v;
}

/* Read-only data: in the test's module, covered by no function. */
static const char symtest_data[64] = "not code";

static char out[8192];

/* The load bias of the module holding p, as the loader's link_map says
 * (not through dl_iterate_phdr, which the symbolizer uses). */
static bool bias_of(const void *p, uintptr_t *bias, const char **name)
{
    Dl_info info;
    struct link_map *lm = NULL;
    if (!dladdr1(p, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm)
        return false;
    *bias = lm->l_addr;
    *name = lm->l_name;
    return true;
}

/* The expected "(MODULE+0xMODOFF)" of pc, in want (of n bytes). */
static bool module_part(uintptr_t pc, char *want, size_t n)
{
    uintptr_t bias;
    const char *name;
    if (!bias_of((const void *)pc, &bias, &name))
        return false;
    char exe[PATH_MAX];
    if (!name[0]) {
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (k <= 0)
            return false;
        exe[k] = 0;
        name = exe;
    }
    snprintf(want, n, "(%s+0x%lx)", name, (unsigned long)(pc - bias));
    return true;
}

/* Symbolizes pc: the result must be prefix (a "NAME+0xOFF " or nothing)
 * followed by pc's module part. */
static void check_symbolized(uintptr_t pc, const char *prefix)
{
    char mod[PATH_MAX + 64], want[PATH_MAX + 128];
    CHECK(module_part(pc, mod, sizeof mod));
    snprintf(want, sizeof want, "%s%s", prefix, mod);
    tidei_symbolize(pc, out, sizeof out);
    CHECKF(strcmp(out, want) == 0, "got \"%s\", want \"%s\"", out, want);
}

/* A function of the test: "symtest_global+0x0 (EXE+0xOFF)" exactly, EXE
 * being readlink of /proc/self/exe and OFF pc minus the bias of the
 * loader's link_map.  Fails if the symbol is
 * not found (.symtab not read), the name or offset is wrong, or the module
 * path or module offset differ. */
static void own_function(void)
{
    check_symbolized((uintptr_t)&symtest_global, "symtest_global+0x0 ");
}

/* A static function 5 bytes in: "symtest_static+0x5 (...)".  Fails if local
 * symbols are skipped or the offset inside the function is wrong. */
static void static_function(void)
{
    int (*volatile fn)(int) = symtest_static;
    CHECK(fn(0) == 312);
    check_symbolized((uintptr_t)fn + 5, "symtest_static+0x5 ");
}

/* Three bytes into libc's write (looked up in libc itself, not through a
 * PLT stub or a sanitizer's interceptor): "NAME+0x3 (.../libc.so.6+0xOFF)"
 * where NAME is write or an alias at the same address (from .dynsym, libc
 * being stripped).  Fails if .dynsym is not used as the fallback, or the
 * module or offset is wrong. */
static void libc_function(void)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    CHECK(libc != NULL);
    if (!libc)
        return;
    void *w = dlsym(libc, "write");
    CHECK(w != NULL);
    if (!w)
        return;
    uintptr_t pc = (uintptr_t)w + 3;
    tidei_symbolize(pc, out, sizeof out);
    char name[256] = "";
    const char *plus = strstr(out, "+0x3 (");
    CHECKF(plus && (size_t)(plus - out) < sizeof name, "no \"NAME+0x3 (\" in \"%s\"", out);
    if (plus) {
        memcpy(name, out, (size_t)(plus - out));
        name[plus - out] = 0;
        CHECKF(dlsym(libc, name) == w, "\"%s\": %s is not an alias of write", out, name);
        CHECKF(strcmp(name, "write") == 0, "\"%s\": write has the alias %s but its own name is better", out, name);
    }
    char mod[PATH_MAX + 64];
    CHECK(module_part(pc, mod, sizeof mod));
    CHECKF(plus && strcmp(plus + 5, mod) == 0, "got \"%s\", want the module part \"%s\"", out, mod);
    CHECKF(strstr(out, "libc.so"), "\"%s\" does not name libc.so", out);
    dlclose(libc);
}

/* Data of the test's module: "(EXE+0xOFF)", no function name.  Fails if a
 * function (or a size-0 symbol such as _fini before the data) is taken as
 * covering it. */
static void module_only(void)
{
    check_symbolized((uintptr_t)symtest_data + 8, "");
}

/* Addresses in no module: the bare address.  Fails if a module is claimed
 * or the hex is wrong. */
static void no_module(void)
{
    tidei_symbolize(0x1000, out, sizeof out);
    CHECKF(strcmp(out, "0x1000") == 0, "got \"%s\"", out);
    tidei_symbolize(0, out, sizeof out);
    CHECKF(strcmp(out, "0x0") == 0, "got \"%s\"", out);
    tidei_symbolize(0xffffffffffff0123ull, out, sizeof out);
    CHECKF(strcmp(out, "0xffffffffffff0123") == 0, "got \"%s\"", out);
}

/* The mappings of this test's file at offset 0 in /proc/self/maps (the
 * loader's first segment, and the symbolizer's view while it has one). */
static int exe_maps_at_0(void)
{
    char exe[PATH_MAX], line[PATH_MAX + 256];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0)
        return -1;
    exe[k] = 0;
    FILE *m = fopen("/proc/self/maps", "r");
    if (!m)
        return -1;
    int n = 0;
    while (fgets(line, sizeof line, m)) {
        unsigned long lo, hi, off;
        char perms[8];
        int at = 0;
        line[strcspn(line, "\n")] = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &lo, &hi, perms, &off, &at) >= 4
            && at > 0 && off == 0 && strcmp(line + at, exe) == 0)
            n++;
    }
    fclose(m);
    return n;
}

/* After tidei_symbolize_done (every file unmapped, the cache empty) the
 * same address gives the same text.  The symbolizer's view of the file
 * shows in /proc/self/maps while cached and is gone after done.  Fails if
 * done leaves a mapping or a stale entry, or a lookup maps nothing. */
static void done_and_again(void)
{
    char before[sizeof out];
    uintptr_t pc = (uintptr_t)&symtest_global + 1;
    tidei_symbolize_done();
    int n0 = exe_maps_at_0();
    CHECK(n0 >= 1);
    tidei_symbolize(pc, before, sizeof before);
    CHECKF(strncmp(before, "symtest_global+0x1 (", 20) == 0, "got \"%s\"", before);
    CHECKF(exe_maps_at_0() == n0 + 1, "%d mappings of the file at offset 0 with the view, %d without",
           exe_maps_at_0(), n0);
    tidei_symbolize(pc, out, sizeof out);   /* cached: no second view */
    CHECK(exe_maps_at_0() == n0 + 1);
    tidei_symbolize_done();
    CHECKF(exe_maps_at_0() == n0, "%d mappings of the file at offset 0 after done, %d before", exe_maps_at_0(), n0);
    for (size_t i = 0; i < TIDE_SYM_FILES; i++)
        CHECK(sym_files[i].map == NULL && sym_files[i].path[0] == 0);
    tidei_symbolize(pc, out, sizeof out);
    CHECKF(strcmp(out, before) == 0, "after done got \"%s\", before \"%s\"", out, before);
    tidei_symbolize_done();
}

/* Truncation: at most len - 1 bytes, a prefix of the full text, NUL at the
 * end, nothing written past len; len 0 writes nothing.  Fails on an
 * overrun or a missing NUL. */
static void truncation(void)
{
    char full[sizeof out];
    uintptr_t pc = (uintptr_t)&symtest_global;
    tidei_symbolize(pc, full, sizeof full);
    size_t n = strlen(full);
    CHECK(n > 20);
    for (size_t len = 0; len <= n + 2; len++) {
        char b[sizeof out];
        memset(b, 'Z', sizeof b);
        tidei_symbolize(pc, b, len);
        if (len == 0) {
            CHECKF(b[0] == 'Z', "len 0 wrote a byte");
            continue;
        }
        size_t want = len - 1 < n ? len - 1 : n;
        CHECKF(memchr(b, 0, len) == b + want, "len %zu: NUL not at %zu", len, want);
        CHECKF(memcmp(b, full, want) == 0, "len %zu: not a prefix", len);
        CHECKF(b[len] == 'Z', "len %zu: wrote past len", len);
    }
    char small[4] = "ZZZ";
    tidei_symbolize(0x1000, small, 3);
    CHECKF(strcmp(small, "0x") == 0, "got \"%s\"", small);
    tidei_symbolize_done();
}

/* More modules than cache slots (the same file at fake biases): every
 * answer right, every slot mapped once, done unmaps them all. */
static void cache_eviction(void)
{
    uintptr_t pc = (uintptr_t)&symtest_global;
    char path[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", path, sizeof path - 1);
    CHECK(k > 0);
    if (k <= 0)
        return;
    path[k] = 0;
    uintptr_t bias;
    const char *name;
    CHECK(bias_of((void *)pc, &bias, &name));
    for (uintptr_t i = 0; i < 3 * TIDE_SYM_FILES; i++) {
        const sym_file_t *f = sym_file(path, bias + i * 4096);
        CHECK(f && f->map);
        if (f && f->map) {
            const Elf64_Sym *s = sym_lookup(f, pc - bias);
            size_t n = 0;
            const char *nm = s ? sym_name(f, s, &n) : NULL;
            CHECK(nm && n == 14 && memcmp(nm, "symtest_global", 14) == 0);
        }
    }
    tidei_symbolize_done();
    for (size_t i = 0; i < TIDE_SYM_FILES; i++)
        CHECK(sym_files[i].map == NULL);
}

/* Damaged files: the test's own file, read into memory, with random bytes
 * of its ELF header and section headers (and of the symbol table) changed,
 * and truncated at random lengths; sym_parse and sym_lookup must only read
 * inside it (valgrind or ASan sees an overread of the malloc'ed copy) and
 * must not crash.  Fails if the undamaged copy yields no symbol. */
static void malformed(void)
{
    int fd = open("/proc/self/exe", O_RDONLY);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size > 0);
    size_t size = (size_t)st.st_size;
    char *img = malloc(size);
    size_t got = 0;
    ssize_t r;
    while (got < size && (r = read(fd, img + got, size - got)) > 0)
        got += (size_t)r;
    close(fd);
    CHECK(got == size);
    if (got != size) {
        free(img);
        return;
    }
    uintptr_t bias;
    const char *name;
    CHECK(bias_of((void *)&symtest_global, &bias, &name));
    uint64_t off = (uintptr_t)&symtest_global - bias;

    sym_file_t *f = calloc(1, sizeof *f);
    f->map = img;
    f->map_bytes = size;
    CHECK(sym_parse(f) && sym_lookup(f, off) != NULL);
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    size_t sh_lo = eh->e_shoff, sh_hi = eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr);
    CHECK(sh_hi <= size);
    size_t sym_lo = (size_t)((const char *)f->syms - img);
    size_t sym_hi = sym_lo + f->n_syms * sizeof(Elf64_Sym);

    th_rng rng = { 0x5eed };
    for (int it = 0; it < 3000; it++) {
        /* Damage 1 to 4 bytes (remembered, to be put back). */
        size_t pos[4];
        char old[4];
        int n = 1 + (int)(th_rand(&rng) % 4);
        for (int j = 0; j < n; j++) {
            uint64_t x = th_rand(&rng);
            size_t p;
            switch (x % 3) {
            case 0: p = (size_t)(x >> 8) % sizeof *eh; break;
            case 1: p = sh_lo + (size_t)(x >> 8) % (sh_hi - sh_lo); break;
            default: p = sym_lo + (size_t)(x >> 8) % (sym_hi - sym_lo); break;
            }
            pos[j] = p;
            old[j] = img[p];
            img[p] = (char)(th_rand(&rng) >> 24);
        }
        if (sym_parse(f)) {
            sym_lookup(f, off);
            sym_lookup(f, th_rand(&rng) % (size + 1));
        }
        for (int j = n - 1; j >= 0; j--)
            img[pos[j]] = old[j];
    }

    /* Truncated copies (malloc'ed to their exact length). */
    for (int it = 0; it < 40; it++) {
        size_t len = it < 8 ? (size_t)it * 9 : (size_t)(th_rand(&rng) % size);
        char *cut = malloc(len ? len : 1);
        memcpy(cut, img, len);
        f->map = cut;
        f->map_bytes = len;
        if (sym_parse(f))
            sym_lookup(f, off);
        free(cut);
    }
    free(f);
    free(img);
}

int main(void)
{
    RUN(own_function);
    RUN(static_function);
    RUN(libc_function);
    RUN(module_only);
    RUN(no_module);
    RUN(done_and_again);
    RUN(truncation);
    RUN(cache_eviction);
    RUN(malformed);
    return th_summary();
}
