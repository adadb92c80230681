# fcvm — build, test, bench, check, fuzz.
# `make deps` once on a fresh Debian machine (apt packages, the fcvm users), then `make test`.

VERSION    := 0.1.0
BUILD      ?= build
PREFIX     ?= /usr/local
LIBEXECDIR ?= $(PREFIX)/libexec/fcvm
CC         ?= cc
CLANG      ?= clang

PKGS       := msgpack libevent jansson libseccomp libcap liblzma libarchive libcrypto libmnl libnftnl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wno-unused-parameter
DEFS     := -D_GNU_SOURCE -DFCVM_VERSION='"$(VERSION)"' -DFCVM_LIBEXECDIR='"$(LIBEXECDIR)"'
CFLAGS   ?= -O2 -g
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
ALL_CFLAGS := -std=gnu11 $(CFLAGS) $(WARN) $(DEFS) $(HARDEN) -I. -I$(BUILD) $(PKG_CFLAGS)
LDFLAGS  ?=
ALL_LDFLAGS := $(LDFLAGS) -pie -Wl,-z,relro,-z,now

# Test build: AddressSanitizer + UndefinedBehaviorSanitizer.
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_CFLAGS := -std=gnu11 -O1 -g $(WARN) $(DEFS) -I. -I$(BUILD) $(PKG_CFLAGS) $(SAN_FLAGS)

# ---- sources ----
POLICIES    := $(wildcard policy/*.policy)
POLICY_GEN  := $(patsubst policy/%.policy,$(BUILD)/gen/policy_%.c,$(POLICIES))
LIB_SRC     := $(wildcard proto/*.c common/*.c helpers/common/*.c) helpers/stored/store.c helpers/stored/qcow2.c supervisor/qemu_argv.c \
               $(filter-out helpers/netd/main.c,$(wildcard helpers/netd/*.c)) \
               $(filter-out policy/policyc.c,$(wildcard policy/*.c))
LIB_OBJ     := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(POLICY_GEN:.c=.o)
SAN_LIB_OBJ := $(patsubst %.c,$(BUILD)/asan/%.o,$(LIB_SRC)) $(patsubst $(BUILD)/gen/%.c,$(BUILD)/asan/gen/%.o,$(POLICY_GEN))

FCVM_SRC    := $(filter-out supervisor/qemu_argv.c,$(wildcard cli/*.c supervisor/*.c))
HELPERS     := netd stored uffdd
HELPER_BINS := $(patsubst %,$(BUILD)/fcvm-%,$(HELPERS))

UNIT_SRC    := $(wildcard tests/unit/test_*.c)   # built with sanitizers
SBX_SRC     := $(wildcard tests/unit/sbx_*.c)    # run real seccomp filters: plain build
UNIT_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC) $(SBX_SRC))
IT_SRC      := $(wildcard tests/integration/*.c)    # programs the integration scripts run
IT_BINS     := $(patsubst tests/integration/%.c,$(BUILD)/tests/it_%,$(IT_SRC))
BENCH_SRC   := $(wildcard bench/*.c)
BENCH_BINS  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS   := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_LIB_SRC := $(wildcard proto/*.c)

.PHONY: all test unit bench check fuzz fuzz-build deps install clean format
.SECONDARY: # keep objects make would treat as intermediate (helpers)
all: $(BUILD)/fcvm $(HELPER_BINS) $(BUILD)/fcvm-agent

# ---- policy compiler: policy/NAME.policy -> C ----
$(BUILD)/policyc: policy/policyc.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O1 -g $(WARN) -D_GNU_SOURCE -o $@ $<

$(BUILD)/gen/policy_%.c: policy/%.policy $(POLICIES) $(wildcard policy/*.inc) $(BUILD)/policyc
	@mkdir -p $(@D)
	$(BUILD)/policyc -I policy $< > $@.tmp && mv $@.tmp $@

# ---- objects ----
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(SAN_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/asan/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(@D)
	$(CC) $(SAN_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libfcvm.a: $(LIB_OBJ) Makefile
	rm -f $@ && ar rcs $@ $(filter %.o,$^)

$(BUILD)/libfcvm-asan.a: $(SAN_LIB_OBJ) Makefile
	rm -f $@ && ar rcs $@ $(filter %.o,$^)

# ---- programs ----
$(BUILD)/fcvm: $(patsubst %.c,$(BUILD)/obj/%.o,$(FCVM_SRC)) $(BUILD)/libfcvm.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

# The guest agent: static (it is PID 1 of a guest with no libraries of ours), proto/ and
# common/util.c only, linked with msgpack-c's static library.
AGENT_SRC := $(wildcard agent/*.c) $(wildcard proto/*.c) common/util.c
AGENT_OBJ := $(patsubst %.c,$(BUILD)/agent/%.o,$(AGENT_SRC))
$(BUILD)/agent/%.o: %.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) $(DEFS) -I. -I$(BUILD) -MMD -MP -c -o $@ $<
$(BUILD)/fcvm-agent: $(AGENT_OBJ)
	$(CC) -static -o $@ $^ -lmsgpackc
# tests/unit/test_agent.c runs the agent binary
$(BUILD)/tests/test_agent: $(BUILD)/fcvm-agent

# (a called variable: in a pattern rule's prerequisites make would replace a literal % by the stem)
helper_objs = $(BUILD)/obj/helpers/$(1)/main.o
.SECONDEXPANSION:
$(BUILD)/fcvm-%: $$(call helper_objs,$$*) $(BUILD)/libfcvm.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c tests/unit/check.h $(BUILD)/libfcvm-asan.a
	@mkdir -p $(@D)
	$(CC) $(SAN_CFLAGS) -o $@ $< $(BUILD)/libfcvm-asan.a $(PKG_LIBS)

$(BUILD)/tests/sbx_%: tests/unit/sbx_%.c tests/unit/check.h $(BUILD)/libfcvm.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libfcvm.a $(PKG_LIBS)

$(BUILD)/tests/it_%: tests/integration/%.c $(BUILD)/libfcvm.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libfcvm.a $(PKG_LIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libfcvm.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libfcvm.a $(PKG_LIBS) -lm

# libFuzzer targets (clang): the decoders, under ASan + UBSan.
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_SRC) $(wildcard proto/*.h)
	@mkdir -p $(@D)
	$(CLANG) -std=gnu11 -O1 -g -D_GNU_SOURCE -I. $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -o $@ $< $(FUZZ_LIB_SRC) $(PKG_LIBS)

# ---- test, bench, fuzz, check ----
unit: $(UNIT_BINS) $(IT_BINS) $(FUZZ_BINS)
test: all unit
	tests/run

bench: all $(BENCH_BINS)
	bench/run

fuzz-build: $(FUZZ_BINS)
FUZZ_SECONDS ?= 60
fuzz: $(FUZZ_BINS)
	tests/fuzz/run $(FUZZ_SECONDS)

CHECK_SRC := $(shell git ls-files '*.c' '*.h' 2>/dev/null)
check: $(POLICY_GEN)
	clang-format --dry-run -Werror $(CHECK_SRC)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
		--inline-suppr --suppressions-list=.cppcheck-suppressions -I. -D_GNU_SOURCE $(CHECK_SRC)
	clang-tidy --quiet $(filter %.c,$(CHECK_SRC)) -- -std=gnu11 $(DEFS) -I. -I$(BUILD) $(PKG_CFLAGS)

format:
	clang-format -i $(CHECK_SRC)

deps:
	scripts/install-deps

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)/etc/systemd/system
	install -m 0755 $(BUILD)/fcvm $(DESTDIR)$(PREFIX)/bin/fcvm
	install -m 0755 $(HELPER_BINS) $(BUILD)/fcvm-agent $(DESTDIR)$(LIBEXECDIR)/
	sed 's|@BINDIR@|$(PREFIX)/bin|g' scripts/fcvm.service.in > $(DESTDIR)/etc/systemd/system/fcvm.service
	scripts/create-users

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
