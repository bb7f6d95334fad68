# tide — GNU Makefile.  See README.md for the targets.
#   make                 release build (-O2 -g) of build/libtide.so and build/libtide.a
#   make DEBUG=1         debug build with invariant checks (build/debug)
#   make SANITIZE=thread|undefined|address   sanitizer build (build/<sanitizer>)
#   make STATS=0         build/nostats: no counting on the fast paths (only to
#                        measure what the accounting costs; its stats are wrong)
#   make test            unit, api, misuse, stress and real-program tests
#   make check           the stress tests again under SANITIZE=thread and =undefined
#   make bench [QUICK=1] the benchmark suite against glibc, jemalloc, mimalloc, tcmalloc
#   make bench-instr     instructions per malloc/free pair (callgrind)
#   PEERS="name=/path/lib.so ..." make bench|bench-instr|bench-rss
#                        also measures those allocators, built outside the tree
#                        (e.g. mimalloc 3, snmalloc; see docs/benchmarks.md)
#   make bench-rss [QUICK=1]  memory given back to the OS after load drops:
#                        rss-recovery (bench/rss.c), the bursty chart, redis FLUSHALL
#   make install PREFIX=/usr/local   (also bin/tide-heap and share/tide/tide-gdb.py)

CC      ?= cc
PREFIX  ?= /usr/local
DEBUG   ?= 0
SANITIZE ?=

STATS   ?= 1

ifeq ($(SANITIZE),)
  ifneq ($(STATS),1)
    BUILD ?= build/nostats
  else ifeq ($(DEBUG),0)
    BUILD ?= build
  else
    BUILD ?= build/debug
  endif
else
  BUILD ?= build/$(SANITIZE)
endif

# GCC's option (below, "the code every process runs"); clang has no such
# clones and no such option.
NO_PARTIAL := $(shell $(CC) -fno-partial-inlining -x c -c /dev/null -o /dev/null 2>/dev/null && echo -fno-partial-inlining)
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS_BASE := -std=gnu11 -g -fPIC -pthread -fvisibility=hidden -ftls-model=initial-exec \
               -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc \
               -fno-semantic-interposition -fno-tree-slp-vectorize \
               $(NO_PARTIAL) -Iinclude -Isrc $(WARN)
ifeq ($(DEBUG),0)
  OPT := -O2 -DNDEBUG -DTIDE_DEBUG=0
else
  OPT := -O1 -DTIDE_DEBUG=$(DEBUG)
endif
ifneq ($(SANITIZE),)
  OPT += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -DTIDE_SANITIZE=1
  LDSAN := -fsanitize=$(SANITIZE)
endif
ifneq ($(STATS),1)
  OPT += -DTIDE_STATS=0
endif
# make ARCH=haswell (any -march= value): code for that CPU and later only;
# from haswell on (MOVBE) the free-list links' byte swap costs no
# instruction.  The default build runs on any CPU of the architecture.
ifneq ($(ARCH),)
  OPT += -march=$(ARCH)
endif
override CFLAGS := $(CFLAGS_BASE) $(OPT) $(CFLAGS)

SRCS    := $(wildcard src/*.c src/gc/*.c)
HDRS    := $(wildcard src/*.h src/gc/*.h) include/tide.h include/gc.h

.PHONY: all test check bench bench-instr bench-rss install clean lib
all: lib
lib: $(BUILD)/libtide.so $(BUILD)/libtide.a $(BUILD)/libgc.so.1

# -fno-tree-slp-vectorize: GCC's -O2 would pair free's two stores into a
# free block (link and key) through an SSE register, four instructions
# where two do.
# Unity build: src/static.c includes every module so the compiler can inline
# across files (in two parts, below); the other .c files are never
# compiled on their own.
# The two parts of static.c, src/tide.ld, -fno-partial-inlining (GCC) and the
# 64 KiB max-page-size: the code every process runs comes first in the
# text, in one 64 KiB window, so that the kernel's fault-around (which
# maps the 64 KiB about a faulting page) leaves the rest unmapped.  The
# first part of static.c holds it, and `ld -r` keeps its code before the
# second's; the fast paths' section goes before .text, and the text starts
# at a 64 KiB boundary; GCC splits no function into a clone that it would
# put after all the rest.  tests/api/footprint.sh checks that an ordinary
# program keeps no more of libtide's code resident than that window.
$(BUILD)/tide.o: $(SRCS) $(HDRS) Makefile
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -DTIDE_PART=1 -c src/static.c -o $(BUILD)/tide-1.o
	$(CC) $(CFLAGS) -DTIDE_PART=2 -c src/static.c -o $(BUILD)/tide-2.o
	$(LD) -r -o $@ $(BUILD)/tide-1.o $(BUILD)/tide-2.o

# nodelete: a dlopen'ed libtide.so must never be unloaded, since blocks it
# handed out and its pthread key destructor outlive a dlclose.
# pack-relative-relocs (DT_RELR, glibc 2.36 and binutils 2.38 on): the
# empty heap's 1100 pointers, relocated at load, take 200 bytes of
# relocations instead of 26 KiB, which the loader reads (and keeps
# resident) in every process; used where the linker and libc have it.
RELR := $(shell printf 'int x; int *p = &x;\n' | $(CC) -shared -fPIC -x c - -o /dev/null \
           -Wl,--fatal-warnings -Wl,-z,pack-relative-relocs 2>/dev/null && echo -Wl,-z,pack-relative-relocs)
LDFLAGS_SO := $(LDSAN) -pthread -Wl,-z,now -Wl,-z,nodelete $(RELR) -Wl,--version-script=src/tide.map \
              -Wl,-T,src/tide.ld -Wl,-z,max-page-size=0x10000
$(BUILD)/libtide.so: $(BUILD)/tide.o src/tide.map src/tide.ld
	$(CC) -shared $(LDFLAGS_SO) -Wl,-soname,libtide.so -o $@ $< -ldl

# The same library under the name of Boehm's libgc (soname libgc.so.1): a
# program linked against libgc runs on tide's GC heap (and tide's malloc)
# when it is preloaded (tools/tide-run --gc) or found first on the library path.
$(BUILD)/libgc.so.1: $(BUILD)/tide.o src/tide.map src/tide.ld
	$(CC) -shared $(LDFLAGS_SO) -Wl,-soname,libgc.so.1 -o $@ $< -ldl

$(BUILD)/libtide.a: $(BUILD)/tide.o
	rm -f $@ && ar rcs $@ $<

test: lib
	BUILD=$(BUILD) CC=$(CC) bash tests/run.sh

check:
	$(MAKE) SANITIZE=thread lib
	$(MAKE) SANITIZE=undefined lib
	BUILD=build/thread SANITIZE=thread bash tests/run.sh stress
	BUILD=build/undefined SANITIZE=undefined bash tests/run.sh stress

bench: lib
	QUICK=$(QUICK) bash bench/run.sh

bench-instr: lib
	bash bench/instr.sh

bench-rss: lib
	QUICK=$(QUICK) BENCH=rss-recovery bash bench/run.sh
	QUICK=$(QUICK) bash bench/bursty.sh
	QUICK=$(QUICK) bash bench/redis-flush.sh

install: lib
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	           $(DESTDIR)$(PREFIX)/share/tide
	install -m 755 $(BUILD)/libtide.so $(DESTDIR)$(PREFIX)/lib/libtide.so
	install -m 644 $(BUILD)/libtide.a $(DESTDIR)$(PREFIX)/lib/libtide.a
	install -m 644 include/tide.h $(DESTDIR)$(PREFIX)/include/tide.h
	install -m 755 tools/tide-run $(DESTDIR)$(PREFIX)/bin/tide-run
	install -m 755 tools/tide-heap $(DESTDIR)$(PREFIX)/bin/tide-heap
	install -m 644 tools/gdb/tide-gdb.py $(DESTDIR)$(PREFIX)/share/tide/tide-gdb.py
	sed -e 's|@PREFIX@|$(PREFIX)|g' tools/tide.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tide.pc

clean:
	rm -rf build
