# fcvm — build, test, bench, lint, fuzz.
# `make deps` once on a fresh Debian machine (apt packages, the fcvm users), then `make test`.

VERSION    := 0.1.0
BUILD      ?= build
PREFIX     ?= /usr/local
LIBEXECDIR ?= $(PREFIX)/libexec/fcvm
CC         ?= cc
CLANG      ?= clang

# Each program links what it uses, no more (--as-needed keeps the rest out of DT_NEEDED).
PKGS       := msgpack libevent jansson libseccomp libcap liblzma libarchive libcrypto libmnl libnftnl nettle liburing libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
libs_of     = $(shell pkg-config --libs $(1))
CORE_LIBS     := msgpack libseccomp libcap
CLI_LIBS      := $(call libs_of,$(CORE_LIBS) jansson liblzma libarchive libcrypto)
LAUNCHER_LIBS := $(call libs_of,$(CORE_LIBS))
SUP_LIBS      := $(call libs_of,$(CORE_LIBS) libevent jansson nettle libcurl)
NETD_LIBS     := $(call libs_of,$(CORE_LIBS) libmnl libnftnl)
HELPER_LIBS   := $(call libs_of,$(CORE_LIBS))
UFFDD_LIBS    := $(call libs_of,$(CORE_LIBS) liburing)

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wno-unused-parameter
DEFS     := -D_GNU_SOURCE -DFCVM_VERSION='"$(VERSION)"' -DFCVM_LIBEXECDIR='"$(LIBEXECDIR)"'
CFLAGS   ?= -O2 -g
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
ALL_CFLAGS := -std=gnu11 $(CFLAGS) $(WARN) $(DEFS) $(HARDEN) -I. -I$(BUILD) $(PKG_CFLAGS)
LDFLAGS  ?=
ALL_LDFLAGS := $(LDFLAGS) -pie -Wl,-z,relro,-z,now -Wl,--as-needed

# Test build: AddressSanitizer + UndefinedBehaviorSanitizer.
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_CFLAGS := -std=gnu11 -O1 -g $(WARN) $(DEFS) -I. -I$(BUILD) $(PKG_CFLAGS) $(SAN_FLAGS)

# ---- sources: one folder per process ----
# libfcvm.a: what every process shares (proto/, common/, the sandbox runtime, the helper
# runtime). Each program is its folder's files on top of it. Tests, benches and fuzzers link
# libfcvm-test.a: everything but the main()s.
POLICIES    := $(wildcard policy/*.policy)
POLICY_GEN  := $(patsubst policy/%.policy,$(BUILD)/gen/policy_%.c,$(POLICIES))
CORE_SRC    := $(wildcard proto/*.c common/*.c helpers/common/*.c) $(filter-out policy/policyc.c policy/policy_dump.c,$(wildcard policy/*.c))
CLI_SRC     := $(wildcard cli/*.c)
LAUNCHER_SRC := $(wildcard launcher/*.c)
SUP_SRC     := $(wildcard supervisor/*.c)
NETD_SRC    := $(wildcard helpers/netd/*.c)
STORED_SRC  := $(wildcard helpers/stored/*.c)
UFFDD_SRC   := $(wildcard helpers/uffdd/*.c)
MAINS       := cli/main.c launcher/setup.c supervisor/main.c helpers/netd/main.c helpers/stored/main.c helpers/uffdd/main.c
TESTLIB_SRC := $(filter-out $(MAINS),$(CORE_SRC) $(CLI_SRC) $(LAUNCHER_SRC) $(SUP_SRC) $(NETD_SRC) $(STORED_SRC) $(UFFDD_SRC))
obj_of       = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB_OBJ     := $(call obj_of,$(CORE_SRC)) $(POLICY_GEN:.c=.o)
TESTLIB_OBJ := $(call obj_of,$(TESTLIB_SRC)) $(POLICY_GEN:.c=.o)
SAN_LIB_OBJ := $(patsubst %.c,$(BUILD)/asan/%.o,$(TESTLIB_SRC)) $(patsubst $(BUILD)/gen/%.c,$(BUILD)/asan/gen/%.o,$(POLICY_GEN))

PROGRAMS    := $(BUILD)/fcvm $(BUILD)/fcvm-launcher $(BUILD)/fcvm-supervisor $(BUILD)/fcvm-netd $(BUILD)/fcvm-stored $(BUILD)/fcvm-uffdd
LIBEXEC_BINS := $(filter-out $(BUILD)/fcvm,$(PROGRAMS))

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

.PHONY: all test test-unit test-sbx test-integration unit asan-bin bench check lint fuzz fuzz-build soak deps install \
	clean format policy-dump
.SECONDARY: # keep objects make would treat as intermediate (helpers)
all: $(PROGRAMS) $(BUILD)/fcvm-agent

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

$(BUILD)/libfcvm-test.a: $(TESTLIB_OBJ) Makefile
	rm -f $@ && ar rcs $@ $(filter %.o,$^)

$(BUILD)/libfcvm-asan.a: $(SAN_LIB_OBJ) Makefile
	rm -f $@ && ar rcs $@ $(filter %.o,$^)

# ---- programs ----
$(BUILD)/fcvm: $(call obj_of,$(CLI_SRC)) $(BUILD)/libfcvm.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CLI_LIBS)
$(BUILD)/fcvm-launcher: $(call obj_of,$(LAUNCHER_SRC)) $(BUILD)/libfcvm.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LAUNCHER_LIBS)
$(BUILD)/fcvm-supervisor: $(call obj_of,$(SUP_SRC)) $(BUILD)/libfcvm.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(SUP_LIBS)
$(BUILD)/fcvm-netd: $(call obj_of,$(NETD_SRC)) $(BUILD)/libfcvm.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NETD_LIBS)
$(BUILD)/fcvm-stored: $(call obj_of,$(STORED_SRC)) $(BUILD)/libfcvm.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(HELPER_LIBS)
$(BUILD)/fcvm-uffdd: $(call obj_of,$(UFFDD_SRC)) $(BUILD)/libfcvm.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(UFFDD_LIBS)

# The guest agent: static (it is PID 1 of a guest with no libraries of ours), proto/ and
# common/util.c only, linked with the static libraries of msgpack-c, jansson (the container's
# OCI config, for exec) and libcap.
AGENT_SRC := $(wildcard agent/*.c) $(wildcard proto/*.c) common/util.c
AGENT_OBJ := $(patsubst %.c,$(BUILD)/agent/%.o,$(AGENT_SRC))
$(BUILD)/agent/%.o: %.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) $(DEFS) -I. -I$(BUILD) -MMD -MP -c -o $@ $<
$(BUILD)/fcvm-agent: $(AGENT_OBJ)
	$(CC) -static -o $@ $^ -lmsgpackc -ljansson -lcap
# tests/unit/test_agent.c runs the agent binary
$(BUILD)/tests/test_agent: $(BUILD)/fcvm-agent

$(BUILD)/tests/test_%: tests/unit/test_%.c tests/unit/check.h $(BUILD)/libfcvm-asan.a
	@mkdir -p $(@D)
	$(CC) $(SAN_CFLAGS) -o $@ $< $(BUILD)/libfcvm-asan.a $(PKG_LIBS)

$(BUILD)/tests/sbx_%: tests/unit/sbx_%.c tests/unit/check.h $(BUILD)/libfcvm-test.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libfcvm-test.a $(PKG_LIBS)

$(BUILD)/tests/it_%: tests/integration/%.c $(BUILD)/libfcvm-test.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libfcvm-test.a $(PKG_LIBS)

# run inside QEMU's filter: libc alone, as QEMU's own start-up
$(BUILD)/tests/it_vmm_probe_inside: tests/integration/vmm_probe_inside.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $<

$(BUILD)/bench/%: bench/%.c $(BUILD)/libfcvm-test.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libfcvm-test.a $(PKG_LIBS) -lm

# libFuzzer targets (clang): the decoders, under ASan + UBSan.
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_SRC) $(wildcard proto/*.h)
	@mkdir -p $(@D)
	$(CLANG) -std=gnu11 -O1 -g -D_GNU_SOURCE -I. $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -o $@ $< $(FUZZ_LIB_SRC) $(PKG_LIBS)

# Each process's whole effective power (docs/architecture.md), from the compiled-in policies.
$(BUILD)/policy-dump: policy/policy_dump.c $(BUILD)/libfcvm.a
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LAUNCHER_LIBS)
policy-dump: $(BUILD)/policy-dump
	@$(BUILD)/policy-dump

# ---- test, bench, fuzz, lint ----
# Three test groups, each a target of its own, run by tests/run; with -j they run beside each
# other (the integration scripts stay one at a time: each VM costs a core). Alone, a group ends
# with its own "N passed, N failed, N skipped"; under `make test` (= `make check`) each group
# leaves its counts in $(TEST_RESULTS)/GROUP and one summary line, and the exit status, close
# the run. PATTERN=STR runs only the tests whose name contains STR. Time limits (seconds,
# environment): CHECK_TIMEOUT_S per unit test case (120), TEST_BIN_TIMEOUT_S per test binary
# or corpus replay (300), TEST_IT_TIMEOUT_S per integration script (900).
TEST_BINS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
SBX_BINS     := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(SBX_SRC))
TEST_RESULTS := $(BUILD)/test-results
PATTERN      ?=
test_run      = BUILD='$(BUILD)' tests/run --group $(1) $(if $(TEST_TALLY),--tally $(TEST_RESULTS)/$(1)) -- '$(PATTERN)'

# The helpers built with ASan+UBSan, for the integration group (tests/run: asan/*): their main()s
# on libfcvm-asan.a, with the sanitizer options compiled in (tests/asan_options.c: the spawner
# gives them an empty environment). The programs they run beside are the plain ones, copied:
# the CLI and the launcher look for their programs beside themselves (/proc/self/exe).
ASAN_BIN      := $(BUILD)/asan-bin
ASAN_HELPERS  := $(ASAN_BIN)/fcvm-netd $(ASAN_BIN)/fcvm-stored $(ASAN_BIN)/fcvm-uffdd
ASAN_COPIES   := $(ASAN_BIN)/fcvm $(ASAN_BIN)/fcvm-launcher $(ASAN_BIN)/fcvm-supervisor $(ASAN_BIN)/fcvm-agent
ASAN_PROGRAMS := $(ASAN_HELPERS) $(ASAN_COPIES)
ASAN_OPTS_OBJ := $(BUILD)/asan/tests/asan_options.o
$(ASAN_BIN)/fcvm-netd: $(BUILD)/asan/helpers/netd/main.o $(ASAN_OPTS_OBJ) $(BUILD)/libfcvm-asan.a
	@mkdir -p $(@D)
	$(CC) $(SAN_FLAGS) $(ALL_LDFLAGS) -o $@ $^ $(NETD_LIBS)
$(ASAN_BIN)/fcvm-stored: $(BUILD)/asan/helpers/stored/main.o $(ASAN_OPTS_OBJ) $(BUILD)/libfcvm-asan.a
	@mkdir -p $(@D)
	$(CC) $(SAN_FLAGS) $(ALL_LDFLAGS) -o $@ $^ $(HELPER_LIBS)
$(ASAN_BIN)/fcvm-uffdd: $(BUILD)/asan/helpers/uffdd/main.o $(ASAN_OPTS_OBJ) $(BUILD)/libfcvm-asan.a
	@mkdir -p $(@D)
	$(CC) $(SAN_FLAGS) $(ALL_LDFLAGS) -o $@ $^ $(UFFDD_LIBS)
$(ASAN_OPTS_OBJ): tests/asan_options.c # its one deliberate UB (see there) reports and goes on
	@mkdir -p $(@D)
	$(CC) $(SAN_CFLAGS) -fsanitize-recover=shift -MMD -MP -c -o $@ $<
$(ASAN_COPIES): $(ASAN_BIN)/%: $(BUILD)/%
	@mkdir -p $(@D)
	cp -f $< $@
asan-bin: $(ASAN_PROGRAMS)

# every program tests/run runs
unit: $(UNIT_BINS) $(IT_BINS) $(FUZZ_BINS) $(ASAN_PROGRAMS)

test-unit: $(TEST_BINS) $(FUZZ_BINS)
	@$(call test_run,unit)
test-sbx: all $(SBX_BINS) $(BUILD)/policyc
	@$(call test_run,sbx)
test-integration: all $(IT_BINS) $(ASAN_PROGRAMS)
	@$(call test_run,integration)
test: TEST_TALLY := 1
test: test-unit test-sbx test-integration
	@tests/run --summary $(TEST_RESULTS)/unit $(TEST_RESULTS)/sbx $(TEST_RESULTS)/integration
check: test

bench: all $(BENCH_BINS) $(BUILD)/tests/it_fair_client
	bench/run

# the long soak (tests/integration/soak.sh; CI runs it with 30 operations)
SOAK_OPS ?= 1000
soak: all $(IT_BINS)
	SOAK_OPS=$(SOAK_OPS) TEST_IT_TIMEOUT_S=14400 tests/run --group integration -- soak

fuzz-build: $(FUZZ_BINS)
FUZZ_SECONDS ?= 60
fuzz: $(FUZZ_BINS)
	tests/fuzz/run $(FUZZ_SECONDS)

CHECK_SRC := $(shell git ls-files '*.c' '*.h' 2>/dev/null)
lint: $(POLICY_GEN)
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
	install -m 0755 $(LIBEXEC_BINS) $(BUILD)/fcvm-agent $(DESTDIR)$(LIBEXECDIR)/
	sed 's|@BINDIR@|$(PREFIX)/bin|g' scripts/fcvm.service.in > $(DESTDIR)/etc/systemd/system/fcvm.service
	install -d $(DESTDIR)/etc/fcvm # an edited quotas file is kept
	[ -e $(DESTDIR)/etc/fcvm/quotas.conf ] || install -m 0644 etc/quotas.conf $(DESTDIR)/etc/fcvm/quotas.conf
	scripts/create-users

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
