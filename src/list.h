/* list.h — the intrusive doubly linked list, written once.
 *
 * A list is a head pointer (and, for the _tail variants, a tail pointer)
 * to elements that carry their own two link fields; the macros name those
 * fields, so that one element can sit on two lists at once (gc spans do).
 * A detached element has both links NULL.  No locking: each list's owner
 * says which lock guards it.  A head is stored with a relaxed atomic store
 * (a plain move on x86-64), so that whoever only wants to know whether a
 * list is empty may peek at it without the lock (__atomic_load_n). */
#ifndef TIDE_LIST_H
#define TIDE_LIST_H

#define tide_list_set_head(head, v) __atomic_store_n(&(head), (v), __ATOMIC_RELAXED)

/* Puts e first on the list at head. */
#define tide_list_push(head, e, next, prev)                                   \
    do {                                                                      \
        (e)->prev = NULL;                                                     \
        (e)->next = (head);                                                   \
        if ((e)->next)                                                        \
            (e)->next->prev = (e);                                            \
        tide_list_set_head(head, e);                                          \
    } while (0)

/* Takes e off the list at head. */
#define tide_list_remove(head, e, next, prev)                                 \
    do {                                                                      \
        if ((e)->prev)                                                        \
            (e)->prev->next = (e)->next;                                      \
        else                                                                  \
            tide_list_set_head(head, (e)->next);                              \
        if ((e)->next)                                                        \
            (e)->next->prev = (e)->prev;                                      \
        (e)->next = (e)->prev = NULL;                                         \
    } while (0)

/* Puts e right after element at of the list at head (first if at is NULL):
 * for lists kept in order. */
#define tide_list_insert_after(head, at, e, next, prev)                       \
    do {                                                                      \
        if (!(at)) {                                                          \
            tide_list_push(head, e, next, prev);                              \
        } else {                                                              \
            (e)->prev = (at);                                                 \
            (e)->next = (at)->next;                                           \
            if ((e)->next)                                                    \
                (e)->next->prev = (e);                                        \
            (at)->next = (e);                                                 \
        }                                                                     \
    } while (0)

/* The same for a list that also keeps its last element in tail. */
#define tide_list_push_tail(head, tail, e, next, prev)                        \
    do {                                                                      \
        if (!(head))                                                          \
            (tail) = (e);                                                     \
        tide_list_push(head, e, next, prev);                                  \
    } while (0)

#define tide_list_append_tail(head, tail, e, next, prev)                      \
    do {                                                                      \
        (e)->next = NULL;                                                     \
        (e)->prev = (tail);                                                   \
        if (tail)                                                             \
            (tail)->next = (e);                                               \
        else                                                                  \
            tide_list_set_head(head, e);                                      \
        (tail) = (e);                                                         \
    } while (0)

#define tide_list_remove_tail(head, tail, e, next, prev)                      \
    do {                                                                      \
        if (!(e)->next)                                                       \
            (tail) = (e)->prev;                                               \
        tide_list_remove(head, e, next, prev);                                \
    } while (0)

#endif
