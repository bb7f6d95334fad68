/* os.c — the OS layer: the only file that calls mmap, munmap, mremap,
 * madvise and mprotect.  Every request is counted so that tests can make the Nth one fail
 * (TIDE_CONF=os_fail_at=N / os_fail_from=N); a failure is reported to the
 * caller as NULL/false and becomes ENOMEM at the API.  Also the clock,
 * sleeps, the thread id and an interrupted thread's registers.  Takes no
 * lock; what it unmaps is counted in tidei_global_ctr.returned. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>
#include <ucontext.h>

#include "tide_internal.h"

_Atomic size_t tidei_os_calls;       /* OS requests made so far (read by the gdb script too) */

size_t tidei_os_n_requests(void)
{
    return atomic_load_explicit(&tidei_os_calls, relaxed);
}

/* Counts a request; true if the test hook says it must fail. */
static bool injected_failure(void)
{
    size_t n = atomic_fetch_add_explicit(&tidei_os_calls, 1, relaxed) + 1;
    if (tidei_opt.os_fail_at > 0 && n == (size_t)tidei_opt.os_fail_at)
        return true;
    if (tidei_opt.os_fail_from > 0 && n >= (size_t)tidei_opt.os_fail_from)
        return true;
    return false;
}

/* Maps size bytes (a multiple of the page size) of zeroed read-write memory,
 * or returns NULL. */
void *tidei_os_map(size_t size)
{
    if (injected_failure())
        return NULL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Maps size bytes of zeroed read-write memory exactly at addr (page
 * aligned), only if nothing is mapped there: to grow a range in place.
 * False if the range is taken or the OS refuses. */
bool tidei_os_map_at(void *addr, size_t size)
{
    if (injected_failure())
        return false;
    void *p = mmap(addr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED)
        return false;
    if (p != addr) {  /* a kernel before 4.17 took the address as a hint */
        munmap(p, size);
        return false;
    }
    return true;
}

/* Reserves size bytes of address space that is committed only when touched
 * (MAP_NORESERVE): for the page map's leaves. */
void *tidei_os_reserve(size_t size)
{
    if (injected_failure())
        return NULL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Reserves size bytes of address space with no access (PROT_NONE,
 * MAP_NORESERVE): the guarded slots (guard.c) open pages of it with
 * tidei_os_protect. */
void *tidei_os_reserve_none(size_t size)
{
    if (injected_failure())
        return NULL;
    void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Makes [p, p + size) (whole pages of a mapping of tide's) readable and
 * writable, or inaccessible.  False if the kernel refused (no memory, or
 * the process ran out of map entries). */
bool tidei_os_protect(void *p, size_t size, bool rw)
{
    if (rw && injected_failure())
        return false;
    return mprotect(p, size, rw ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
}

/* Maps size bytes aligned to align (a power of two, >= page size) by mapping
 * more and trimming the ends. */
void *tidei_os_map_aligned(size_t size, size_t align)
{
    if (align <= TIDE_PAGE_SIZE)
        return tidei_os_map(size);
    if (size + align < size)
        return NULL;
    char *p = tidei_os_map(size + align);
    if (!p)
        return NULL;
    uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = a - (uintptr_t)p;
    size_t tail = align - head;
    if (head)
        munmap(p, head);
    if (tail)
        munmap((char *)a + size, tail);
    return (void *)a;
}

void tidei_os_unmap(void *p, size_t size)
{
    if (munmap(p, size) != 0)
        tidei_fatal("tide: internal error: munmap(%p, %zu) failed (errno %d)\n", p, size, errno);
    atomic_fetch_add_explicit(&tidei_global_ctr.returned, size, relaxed);
}

/* Unmaps address space tide reserved and never used for memory (not
 * counted as memory given back). */
void tidei_os_unreserve(void *p, size_t size)
{
    if (munmap(p, size) != 0)
        tidei_fatal("tide: internal error: munmap(%p, %zu) failed (errno %d)\n", p, size, errno);
}

/* Resizes a mapping: in place, or (may_move) wherever the kernel finds room,
 * moving the pages without copying them.  NULL if it cannot. */
void *tidei_os_remap(void *p, size_t old_size, size_t new_size, bool may_move)
{
    if (injected_failure())
        return NULL;
    void *q = mremap(p, old_size, new_size, may_move ? MREMAP_MAYMOVE : 0);
    if (q == MAP_FAILED)
        return NULL;
    if (new_size < old_size)
        atomic_fetch_add_explicit(&tidei_global_ctr.returned, old_size - new_size, relaxed);
    return q;
}

/* Milliseconds of the monotonic clock (coarse: a few ms of resolution,
 * a vDSO read with no system call). */
uint64_t tidei_os_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps ms milliseconds (polling loops of reports and thread stops). */
void tidei_os_sleep_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

/* The calling thread's kernel id. */
int tidei_os_gettid(void)
{
    return (int)syscall(SYS_gettid);
}

/* The program counter, and in *sp (unless sp is NULL) the stack pointer,
 * of the thread a signal interrupted (ucv: the handler's third argument);
 * 0 for both on an architecture this does not know. */
uintptr_t tidei_os_context_pc(const void *ucv, uintptr_t *sp)
{
    const ucontext_t *uc = ucv;
    uintptr_t pc = 0, s = 0;
#if defined(__x86_64__)
    pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    s = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    pc = (uintptr_t)uc->uc_mcontext.pc;
    s = (uintptr_t)uc->uc_mcontext.sp;
#else
    (void)uc;
#endif
    if (sp)
        *sp = s;
    return pc;
}

/* Purges free pages: with dontneed, MADV_DONTNEED (RSS drops at once and the
 * pages read as zero when touched again), else MADV_FREE (the kernel takes
 * them when it needs memory; until then they keep their contents). */
bool tidei_os_purge(void *p, size_t size, bool dontneed)
{
    if (dontneed)
        return tidei_os_decommit(p, size);
    if (madvise(p, size, MADV_FREE) != 0)
        return false;
    atomic_fetch_add_explicit(&tidei_global_ctr.returned, size, relaxed);
    return true;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Makes the pages of [p, p + size) resident and writable now, in one
 * system call rather than a fault per page (a hint: nothing if the kernel,
 * before 5.14, does not know the request; not counted as a request, as it
 * cannot fail the caller).  errno unchanged. */
void tidei_os_populate(void *p, size_t size)
{
    static _Atomic bool unsupported;
    if (atomic_load_explicit(&unsupported, relaxed))
        return;
    int e = errno;
    if (madvise(p, size, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
        atomic_store_explicit(&unsupported, true, relaxed);
    errno = e;
}

/* Asks the kernel for transparent huge pages (on) in the 2 MiB pages that
 * lie wholly inside [p, p + size), or no longer (off), when TIDE_CONF thp
 * is on.  Where the system leaves huge pages to madvise (the usual
 * setting), a block's first touch then costs a fault per 2 MiB rather than
 * per 4 KiB, and in this VM a fault costs microseconds.  Only blocks of
 * 2 MiB or more ask, and a large block's range asks no more once it is
 * freed, so the small spans later carved there are faulted a page at a
 * time.  A hint like tidei_os_populate: not counted, errno unchanged. */
void tidei_os_huge_pages(void *p, size_t size, bool on)
{
    uintptr_t lo = ((uintptr_t)p + TIDE_THP_SIZE - 1) & ~(TIDE_THP_SIZE - 1);
    uintptr_t hi = ((uintptr_t)p + size) & ~(TIDE_THP_SIZE - 1);
    if (!tidei_opt.thp || hi <= lo)
        return;
    int e = errno;
    madvise((void *)lo, hi - lo, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    errno = e;
}

/* Gives the pages back to the OS; the range stays mapped and reads as zero
 * when touched again. */
bool tidei_os_decommit(void *p, size_t size)
{
    if (madvise(p, size, MADV_DONTNEED) != 0)
        return false;
    atomic_fetch_add_explicit(&tidei_global_ctr.returned, size, relaxed);
    return true;
}

/* Moves [src, src + len) onto dst, piece by piece where it spans several
 * kernel mappings (mremap refuses such a range with EFAULT: the range is
 * halved until each piece lies in one).  Adds what it moved to *done (the
 * pieces go in address order).  0, or the errno of the refusal. */
static int move_pieces(char *src, size_t len, char *dst, size_t *done)
{
    if (mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == dst) {
        *done += len;
        return 0;
    }
    int e = errno;
    if (e != EFAULT || len <= TIDE_PAGE_SIZE)
        return e;
    size_t half = (len / 2) & ~(TIDE_PAGE_SIZE - 1);
    e = move_pieces(src, half, dst, done);
    return e ? e : move_pieces(src + half, len - half, dst + half, done);
}

/* Moves the pages of [p, p + size) onto dest, a mapping at least that big
 * that the caller owns (the pages there are replaced): nothing is copied,
 * and the range may span several kernel mappings.  False if the kernel
 * refuses (out of mappings); everything is then where it was. */
bool tidei_os_move(void *p, size_t size, void *dest)
{
    size_t done = 0;
    if (move_pieces(p, size, dest, &done) == 0)
        return true;
    size_t back = 0;
    if (done && move_pieces(dest, done, p, &back) != 0)
        tidei_fatal("tide: internal error: mremap could not move %zu bytes back from %p to %p (errno %d)\n", done,
                    dest, p, errno);
    return false;
}

/* The symbolizer's read-only views of object files (symbolize.c) are not
 * counted as OS requests: they are not heap memory, and a failure costs only
 * symbol names. */

/* Maps the first size bytes (size > 0) of the file open on fd read-only and
 * private, or returns NULL.  The caller may close fd afterwards. */
void *tidei_os_map_file(int fd, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* path = /proc/thread-self/NAME (which 0) or /proc/self/NAME (1); false
 * if that does not fit in 64 bytes. */
static bool proc_path(char path[64], int which, const char *name)
{
    const char *dir = which ? "/proc/self/" : "/proc/thread-self/";
    size_t d = strlen(dir), n = strlen(name);
    if (d + n >= 64)
        return false;
    memcpy(path, dir, d);
    memcpy(path + d, name, n + 1);
    return true;
}

/* Opens /proc's file name (maps) of the process, read-only, or -1.  The
 * calling thread's (/proc/thread-self, Linux 3.17 on) before the
 * process's: /proc/self is the first thread's, and once that one has
 * called pthread_exit its maps are empty and its exe link dangles, while
 * the process goes on in its other threads (the leak check at exit then
 * saw no root at all, and called every block leaked). */
int tidei_os_open_proc(const char *name, int flags)
{
    char path[64];
    int fd = -1;
    for (int which = 0; which < 2 && fd < 0; which++)
        if (proc_path(path, which, name))
            fd = open(path, O_RDONLY | O_CLOEXEC | flags);
    return fd;
}

enum { PAGEMAP_BATCH = 512 };  /* entries a read (4 KiB of stack): 64 GiB untouched take 0.07 s */

/* Calls fn(a, b, arg) for each run [a, b) of the pages of [lo, hi) that
 * were ever written: resident or swapped out, as fd (/proc/self/pagemap,
 * tidei_os_open_proc) says.  Any other page of a private mapping reads as
 * zeros, or as its file, and cannot hold an address the program stored;
 * reading it would fault it in (a real page on kernels that map no zero
 * page).  All of [lo, hi) at once when fd < 0 or the pagemap cannot be
 * read.  errno is kept. */
void tidei_os_each_written(int fd, uintptr_t lo, uintptr_t hi, void (*fn)(uintptr_t a, uintptr_t b, void *arg), void *arg)
{
    if (hi <= lo)
        return;
    if (fd < 0)
        return fn(lo, hi, arg);
    int saved = errno;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uint64_t e[PAGEMAP_BATCH];
    uintptr_t page = lo & ~(pg - 1), run = 0;
    bool in_run = false;
    while (page < hi) {
        size_t n = (hi - page + pg - 1) / pg;
        if (n > PAGEMAP_BATCH)
            n = PAGEMAP_BATCH;
        ssize_t r;
        do
            r = pread(fd, e, n * sizeof *e, (off_t)(page / pg * sizeof *e));
        while (r < 0 && errno == EINTR);
        if (r != (ssize_t)(n * sizeof *e)) {  /* unreadable: the rest whole */
            fn(in_run ? run : page > lo ? page : lo, hi, arg);
            errno = saved;
            return;
        }
        for (size_t k = 0; k < n; k++, page += pg) {
            bool written = (e[k] >> 62) != 0;  /* bit 63 resident, bit 62 swapped */
            if (written && !in_run) {
                run = page > lo ? page : lo;
                in_run = true;
            } else if (!written && in_run) {
                fn(run, page, arg);
                in_run = false;
            }
        }
    }
    if (in_run)
        fn(run, hi, arg);
    errno = saved;
}

/* readlink of /proc's link name (exe) of the process, the calling
 * thread's first (tidei_os_open_proc says why). */
ssize_t tidei_os_readlink_proc(const char *name, char *buf, size_t size)
{
    char path[64];
    ssize_t r = -1;
    for (int which = 0; which < 2 && r <= 0; which++)
        if (proc_path(path, which, name))
            r = readlink(path, buf, size);
    return r;
}

/* Unmaps a view of tidei_os_map_file (p and size as it was mapped). */
void tidei_os_unmap_file(void *p, size_t size)
{
    munmap(p, size);
}

/* Sets the protection of the pages [p, p + size) of a mapping that is not
 * tide's (glibc.c: libc's symbol table); false if the kernel refuses.  Not
 * a memory request: the fault injection does not count it. */
bool tidei_os_mprotect(void *p, size_t size, int prot)
{
    return mprotect(p, size, prot) == 0;
}
