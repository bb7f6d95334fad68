# gc/dlopen_root.sh — the data of a module loaded with dlopen after the
# collector has run is a root: trees stored only in the module's .bss and
# .data survive collections and churn, and after dlclose'ing another module
# the collector still works.  Built here: the module, and a program that
# links libtide and loads the module with plain dlopen (no GC_dlopen).
set -u
case ${SANITIZE:-} in thread|address) echo "SKIP dlopen-root: the program is not built with SANITIZE=$SANITIZE"; exit 0 ;; esac
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cat >"$T/mod.c" <<'C'
#include <gc.h>
static void *bss_slots[8];
static void *data_slots[8] = { (void *)1 };
void mod_set(int i, void *p) { if (i & 1) data_slots[i / 2] = p; else bss_slots[i / 2] = p; }
void *mod_get(int i) { return (i & 1) ? data_slots[i / 2] : bss_slots[i / 2]; }
C
cat >"$T/main.c" <<'C'
#include <gc.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
struct node { struct node *l, *r; long v; };
static struct node *tree(int d, long *c)
{
    struct node *n = GC_MALLOC(sizeof *n);
    n->v = (*c)++;
    if (d) { n->l = tree(d - 1, c); n->r = tree(d - 1, c); }
    return n;
}
static int check(struct node *n, int d, long *c)
{
    if (!n || n->v != (*c)++) return -1;
    return d ? (check(n->l, d - 1, c) | check(n->r, d - 1, c)) : 0;
}
static __attribute__((noinline)) void clear_stack(void) { volatile char b[65536]; memset((char *)b, 0, sizeof b); }
int main(int argc, char **argv)
{
    GC_INIT();
    GC_gcollect();  /* the collector has run before the module is loaded */
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) { printf("FAIL dlopen-root: %s\n", dlerror()); return 1; }
    void (*set)(int, void *) = (void (*)(int, void *))dlsym(h, "mod_set");
    void *(*get)(int) = (void *(*)(int))dlsym(h, "mod_get");
    for (int i = 0; i < 16; i++) { long c = i * 100000; set(i, tree(8, &c)); }
    clear_stack();
    for (int k = 0; k < 20; k++) {
        for (int j = 0; j < 50; j++) { long c = 0; tree(8, &c); }
        GC_gcollect();
    }
    int bad = 0;
    for (int i = 0; i < 16; i++) { long c = i * 100000; bad += check(get(i), 8, &c) != 0; }
    if (bad) printf("FAIL dlopen-root: %d trees held in the module's data damaged\n", bad);
    else printf("PASS dlopen-root\n");
    return bad != 0;
}
C
if ! "$CC" -O1 -g -fno-builtin -shared -fPIC -I"$ROOT/include" -o "$T/mod.so" "$T/mod.c" 2>"$T/err" ||
   ! "$CC" -O1 -g -fno-builtin -pthread -I"$ROOT/include" -o "$T/main" "$T/main.c" -L"$BUILD" -ltide -Wl,-rpath,"$BUILD" -ldl 2>>"$T/err"; then
    echo "FAIL dlopen-root: does not build: $(head -c 300 "$T/err")"
    exit 0
fi
"$T/main" "$T/mod.so"
