/* api/progs/secure_prog.c — the program tests/api/secure.sh runs, linked
 * with build/libtide.a and made setuid or setgid (not a test itself).
 *
 *   secure_prog run          prints "secure N" (getauxval(AT_SECURE)), then
 *                            allocates small, large and huge blocks, leaks
 *                            one, and prints "ok", or "malloc failed" when
 *                            tide refused (os_fail_from), and the SigCgt
 *                            line of /proc/self/status
 *   secure_prog dumps N      calls tide_prof_dump(NULL) N times; prints
 *                            "dump RC ERRNO" for each
 *   secure_prog dump PATH    calls tide_prof_dump(PATH); prints "dump RC ERRNO" */
#include "progs.h"

#include <sys/auxv.h>

int tide_prof_dump(const char *path);

static void *volatile sink;

static int cmd_run(void)
{
    printf("secure %lu\n", getauxval(AT_SECURE));
    fflush(stdout);
    static const size_t sizes[] = { 16, 100, 4096, 100000, 3 << 20, 10 << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *p = malloc(sizes[i]);
        if (!p) {
            printf("malloc failed\n");
            return 0;
        }
        memset(p, 1, sizes[i]);
        free(p);
    }
    sink = malloc(1000);  /* a leak, for leak_check */
    sink = NULL;
    say_sigcgt();
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "run") == 0)
        return cmd_run();
    if (argc == 3 && strcmp(argv[1], "dumps") == 0) {
        for (int i = 0; i < atoi(argv[2]); i++) {
            sink = malloc(100000);
            errno = 0;
            int r = tide_prof_dump(NULL);
            printf("dump %d %d\n", r, r ? errno : 0);
        }
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "dump") == 0) {
        errno = 0;
        int r = tide_prof_dump(argv[2]);
        printf("dump %d %d\n", r, r ? errno : 0);
        return 0;
    }
    return 2;
}
