/* unit/keyhint.c — the free fast path's double-free hint (free.c
 * free_fast, tidei_key_hint): the low half of a block's key word (bytes
 * 8-11), compared with the low half of its span's free key.  A match is
 * only a hint: the owner's checked path (free_local_checked) confirms it
 * on the whole key and on the span's free lists.  For every size class:
 *
 *   - a live block whose bytes 8-11 hold the key's low half, or whose key
 *     word holds the whole key (the program stored that value), is freed
 *     as any other: no report, one block fewer out, on a free list once;
 *   - bytes 12-15 play no part: a block whose last bytes the program wrote
 *     just before the free (a 16-byte block's byte 15) takes the fast path;
 *   - a block freed twice is reported as a double free (in a child, which
 *     aborts with one line).
 *
 * The tests drive tidei_malloc and tidei_free directly (unit tests do not
 * replace the process's malloc). */
#include "unit.h"

/* Whether b is on one of the free lists of s (free, local_free), once. */
static int on_free_lists(tide_span_t *s, const void *b)
{
    int n = 0;
    tide_free_block_t *lists[2] = { s->free, s->local_free };
    for (int i = 0; i < 2; i++)
        for (tide_free_block_t *f = lists[i]; f; f = tidei_link_next(s, f, "test"))
            n += f == b;
    return n;
}

/* A block of class c's size from the calling thread's own span, with the
 * span it came from. */
static void *block_of(int c, tide_span_t **span)
{
    void *p = tidei_malloc(tidei_class_size[c]);
    CHECKF(p != NULL, "class %d: malloc(%u)", c, tidei_class_size[c]);
    *span = p ? tidei_pagemap_lookup(p) : NULL;
    CHECKF(!p || (*span && (*span)->kind == TIDE_SPAN_SMALL && (*span)->cls == c &&
                  tidei_span_owner(*span) == tidei_tls_heap),
           "class %d: block %p not in a span of the class that the thread owns", c, p);
    return p;
}

/* Frees p, which holds what the program wrote, and checks that it went
 * onto a free list of s, once, with one block fewer out. */
static void free_and_check(int c, tide_span_t *s, void *p, const char *what)
{
    uint32_t used = tidei_span_used(s);
    tidei_free(p);
    if (tidei_pagemap_lookup(p) != s || tidei_span_owner(s) != tidei_tls_heap)
        return;  /* the span emptied and went back: p was taken as free */
    CHECKF(tidei_span_used(s) == used - 1, "class %d, %s: %u blocks out after the free, want %u", c, what,
           tidei_span_used(s), used - 1);
    CHECKF(on_free_lists(s, p) == 1, "class %d, %s: the block is on the free lists %d times, want once", c, what,
           on_free_lists(s, p));
}

/* Live blocks that look free to the hint are freed as any other. */
static void live_block_with_the_key(void)
{
    tidei_init();
    for (int c = 1; c < TIDE_N_CLASSES && !TH_FAILED(); c++) {
        tide_span_t *s;
        void *keep = block_of(c, &s);  /* keeps the span when the others go */
        void *p = block_of(c, &s);
        if (!keep || !p)
            break;
        uintptr_t key = tidei_free_key_of(s);
        uint32_t half = (uint32_t)key;
        memcpy((char *)p + 8, &half, sizeof half);  /* bytes 8-11 match, 12-15 do not */
        memset((char *)p + 12, 0x5a, 4);
        free_and_check(c, s, p, "the key's low half");

        p = block_of(c, &s);
        memcpy((char *)p + 8, &key, sizeof key);  /* the whole key */
        free_and_check(c, s, p, "the whole key");

        p = block_of(c, &s);
        memcpy((char *)p + 12, &half, sizeof half);  /* the low half in bytes 12-15 only */
        ((unsigned char *)p)[tidei_class_size[c] - 1] = 0xa5;
        free_and_check(c, s, p, "bytes 12-15 and the last byte written");
        tidei_free(keep);
    }
}

/* The child: frees a block of class *arg twice. */
static void double_free_child(void *arg)
{
    int c = *(int *)arg;
    void *keep = tidei_malloc(tidei_class_size[c]);
    void *p = tidei_malloc(tidei_class_size[c]);
    if (!keep || !p)
        _exit(3);
    ((unsigned char *)p)[tidei_class_size[c] - 1] = 1;  /* the block's last byte, then its free */
    tidei_free(p);
    tidei_free(p);
    _exit(4);
}

/* A double free of a block of any class is still reported. */
static void double_free_reported(void)
{
    tidei_init();
    for (int c = 1; c < TIDE_N_CLASSES && !TH_FAILED(); c++) {
        static char err[4096];
        int st = unit_capture_child(double_free_child, &c, err, sizeof err);
        char sb[64];
        CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "class %d: child %s, stderr: %.300s", c,
               th_status_str(st, sb, sizeof sb), err);
        CHECKF(strstr(err, "double free") && strchr(err, '\n') && strchr(err, '\n')[1] == 0,
               "class %d: report: %.300s", c, err);
    }
}

int main(void)
{
    tidei_opt.shared_blocks = 0;  /* the thread's own spans, not the shared heaps' */
    RUN(live_block_with_the_key);
    RUN(double_free_reported);
    return th_summary();
}
