/* gc/gc.h — the same as gc.h (programs include either). */
#include "../gc.h"
