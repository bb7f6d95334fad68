/* api/progs/prof_prog.c — the program tests/api/prof.sh runs with
 * TIDE_CONF=prof=1 (not a test itself: the runner compiles only the .c
 * files directly in tests/<group>).
 *
 *   prof_prog sites MIB RATE DUMP     allocates the sites below with MIB MiB
 *                                     live in all, prints "pid N" and one
 *                                     line per site with its true bytes,
 *                                     calls tide_prof_dump(DUMP) unless DUMP
 *                                     is "-" (a line "dump RC ERRNO"), and
 *                                     returns from main with every block live
 *   prof_prog wait MIB DIR READY      the same sites, then creates the file
 *                                     READY and waits (up to 5 s) for a
 *                                     non-empty file to appear in DIR (a
 *                                     profile written at a signal); prints
 *                                     "seen NAME" or "timeout"
 *   prof_prog dump PATH...            calls tide_prof_dump(PATH) for each
 *                                     PATH ("NULL" for NULL) and prints
 *                                     "dump PATH RC ERRNO" for each
 *
 * The sites, each a noinline function that calls malloc itself:
 *   site_hot    60 % of the live bytes   (plus 2 x 1 MiB large, 1 x 6 MiB huge)
 *   site_warm   30 %                     (plus 3 x 1 MiB large)
 *   site_cold   10 %                     (plus 2 x 256 KiB large)
 *   site_churn  allocates 2 x MIB MiB in batches of about 1 MiB and frees
 *               each batch (site_churn_free): most of the bytes ever
 *               allocated, none live
 * The rest of each site's bytes is spread evenly over twelve small sizes
 * from 16 B to 64 KiB (the same bytes in each, so many more small blocks
 * than big ones).  Every size is a size class of tide, and large and huge
 * sizes are page multiples, so requested and usable bytes agree.
 *
 * A site's line: "site NAME live BYTES alloc BYTES sd_live SD sd_alloc SD"
 * where SD is the standard deviation of the profile's estimate of those
 * bytes at a sample interval RATE (0 when no RATE is known): each block of
 * n bytes is sampled with probability p = 1 - exp(-n/RATE) and counted as
 * n/p bytes when it is, so its estimate has variance n^2 (1 - p) / p, and
 * the blocks are independent.  The pointers are kept in an mmap'ed array,
 * so that no malloc of the program's own competes with the sites. */
#include "testhelper.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

int tide_prof_dump(const char *path);
#pragma weak tide_prof_dump

/* One allocation site's work: count blocks of each size. */
#define MAX_SIZES 16
struct plan {
    size_t size[MAX_SIZES];   /* block sizes */
    size_t count[MAX_SIZES];  /* blocks of each */
    int n;                    /* entries used */
};

static const size_t small_sizes[] = { 16, 32, 48, 64, 128, 256, 384, 1024, 1536, 4096, 16384, 65536 };
#define N_SMALL (sizeof small_sizes / sizeof small_sizes[0])

static void plan_add(struct plan *pl, size_t size, size_t count)
{
    pl->size[pl->n] = size;
    pl->count[pl->n] = count;
    pl->n++;
}

/* A plan of `bytes` in all: the big blocks given, the rest spread evenly
 * over the small sizes. */
static void plan_make(struct plan *pl, size_t bytes, size_t big, size_t n_big, size_t huge, size_t n_huge)
{
    memset(pl, 0, sizeof *pl);
    size_t rest = bytes - big * n_big - huge * n_huge;
    for (size_t i = 0; i < N_SMALL; i++)
        plan_add(pl, small_sizes[i], rest / N_SMALL / small_sizes[i]);
    if (n_big) plan_add(pl, big, n_big);
    if (n_huge) plan_add(pl, huge, n_huge);
}

static size_t plan_bytes(const struct plan *pl)
{
    size_t b = 0;
    for (int i = 0; i < pl->n; i++) b += pl->size[i] * pl->count[i];
    return b;
}

static size_t plan_blocks(const struct plan *pl)
{
    size_t b = 0;
    for (int i = 0; i < pl->n; i++) b += pl->count[i];
    return b;
}

/* Variance of the profile's estimate of the plan's bytes (see the top). */
static double plan_var(const struct plan *pl, double rate)
{
    double v = 0;
    for (int i = 0; i < pl->n; i++) {
        double n = (double)pl->size[i], q = exp(-n / rate);
        if (q > 0) v += (double)pl->count[i] * n * n * q / (1 - q);
    }
    return v;
}

/* ---- the sites ------------------------------------------------------------- */

/* Each allocates its plan into out[] and returns the number of blocks.  The
 * tag written differs per site, so that no two have the same code (the
 * compiler could fold identical functions into one). */
__attribute__((noinline, noclone)) size_t site_hot(const struct plan *pl, void **out)
{
    size_t k = 0;
    for (int i = 0; i < pl->n; i++)
        for (size_t j = 0; j < pl->count[i]; j++) {
            char *p = malloc(pl->size[i]);
            if (!p) abort();
            p[0] = 'h';
            out[k++] = p;
        }
    return k;
}

__attribute__((noinline, noclone)) size_t site_warm(const struct plan *pl, void **out)
{
    size_t k = 0;
    for (int i = 0; i < pl->n; i++)
        for (size_t j = 0; j < pl->count[i]; j++) {
            char *p = malloc(pl->size[i]);
            if (!p) abort();
            p[0] = 'w';
            out[k++] = p;
        }
    return k;
}

__attribute__((noinline, noclone)) size_t site_cold(const struct plan *pl, void **out)
{
    size_t k = 0;
    for (int i = 0; i < pl->n; i++)
        for (size_t j = 0; j < pl->count[i]; j++) {
            char *p = malloc(pl->size[i]);
            if (!p) abort();
            p[0] = 'c';
            out[k++] = p;
        }
    return k;
}

__attribute__((noinline, noclone)) void site_churn_free(void **ptrs, size_t n)
{
    for (size_t i = 0; i < n; i++) free(ptrs[i]);
}

/* Allocates the plan round-robin over its sizes (one block of each size
 * with blocks left, again and again), freeing what it holds whenever it
 * holds about 1 MiB, and at the end. */
__attribute__((noinline, noclone)) void site_churn(const struct plan *pl, void **batch, size_t batch_max)
{
    size_t left[MAX_SIZES], held = 0, n = 0;
    for (int i = 0; i < pl->n; i++) left[i] = pl->count[i];
    for (bool more = true; more;) {
        more = false;
        for (int i = 0; i < pl->n; i++) {
            if (!left[i]) continue;
            left[i]--;
            more = true;
            char *p = malloc(pl->size[i]);
            if (!p) abort();
            p[0] = 'x';
            batch[n++] = p;
            held += pl->size[i];
            if (held >= MiB || n == batch_max) {
                site_churn_free(batch, n);
                n = 0, held = 0;
            }
        }
    }
    site_churn_free(batch, n);
}

/* ---- modes ----------------------------------------------------------------- */

static void *map_array(size_t n)
{
    void *p = mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(2); }
    return p;
}

static void print_site(const char *name, const struct plan *pl, bool live, double rate)
{
    double sd = rate > 0 ? sqrt(plan_var(pl, rate)) : 0;
    printf("site %s live %zu alloc %zu sd_live %.0f sd_alloc %.0f\n", name,
           live ? plan_bytes(pl) : 0, plan_bytes(pl), live ? sd : 0, sd);
}

/* Allocates the sites with mib MiB live; prints their lines. */
static void run_sites(size_t mib, double rate)
{
    size_t live = mib * MiB;
    struct plan hot, warm, cold, churn;
    plan_make(&hot, live / 10 * 6, MiB, 2, 6 * MiB, 1);
    plan_make(&warm, live / 10 * 3, MiB, 3, 0, 0);
    plan_make(&cold, live / 10, 256 * KiB, 2, 0, 0);
    plan_make(&churn, 2 * live, MiB, 2 * mib / 40, 0, 0);
    void **ptrs = map_array(plan_blocks(&hot) + plan_blocks(&warm) + plan_blocks(&cold));
    size_t k = 0;
    k += site_hot(&hot, ptrs + k);
    k += site_warm(&warm, ptrs + k);
    k += site_cold(&cold, ptrs + k);
    size_t batch_max = MiB / 16 + 1;
    site_churn(&churn, map_array(batch_max), batch_max);
    printf("pid %d\n", (int)getpid());
    print_site("site_hot", &hot, true, rate);
    print_site("site_warm", &warm, true, rate);
    print_site("site_cold", &cold, true, rate);
    print_site("site_churn", &churn, false, rate);
    printf("blocks %zu\n", k);
}

static void print_dump(const char *what, int rc, int err)
{
    printf("dump %s %d %s\n", what, rc, rc == 0 ? "0" : strerrorname_np(err) ? strerrorname_np(err) : "?");
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "sites") == 0 && argc == 5) {
        run_sites(strtoul(argv[2], NULL, 10), strtod(argv[3], NULL));
        if (strcmp(argv[4], "-") != 0) {
            if (!tide_prof_dump) {
                printf("dump missing\n");
                return 0;
            }
            errno = 0;
            int rc = tide_prof_dump(argv[4]);
            print_dump(argv[4], rc, errno);
        }
        return 0;
    }
    if (strcmp(mode, "wait") == 0 && argc == 5) {
        run_sites(strtoul(argv[2], NULL, 10), 0);
        const char *dir = argv[3];
        FILE *f = fopen(argv[4], "w");
        if (!f) { perror(argv[4]); return 2; }
        fclose(f);
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        for (int i = 0; i < 500; i++) {
            DIR *d = opendir(dir);
            if (!d) { perror(dir); return 2; }
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                char path[4096];
                struct stat sb;
                if (e->d_name[0] == '.') continue;
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                if (stat(path, &sb) == 0 && sb.st_size > 0) {
                    printf("seen %s\n", e->d_name);
                    closedir(d);
                    return 0;
                }
            }
            closedir(d);
            nanosleep(&ts, NULL);
        }
        printf("timeout\n");
        return 0;
    }
    if (strcmp(mode, "dump") == 0 && argc >= 3) {
        for (int i = 2; i < argc; i++) {
            if (!tide_prof_dump) {
                printf("dump missing\n");
                return 0;
            }
            const char *path = strcmp(argv[i], "NULL") == 0 ? NULL : argv[i];
            errno = 0;
            int rc = tide_prof_dump(path);
            print_dump(argv[i], rc, errno);
        }
        return 0;
    }
    fprintf(stderr, "usage: prof_prog sites MIB RATE DUMP | wait MIB DIR READY | dump PATH...\n");
    return 2;
}
