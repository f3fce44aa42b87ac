# vmi.h - build, test, bench. `make help` lists the targets.
CC      ?= cc
BUILD   ?= build
WARN    = -Wall -Wextra -Wpedantic -Werror -Wshadow
CWARN   = $(WARN) -Wstrict-prototypes
SAN     = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
HEADERS = vmi.h vmi_file.h vmi_kvm.h vmi_xen.h
UNITS   = test_paging test_mem test_cache test_file test_types test_kallsyms test_dmesg test_kvm test_events test_windows test_reads
FUZZ_SECONDS ?= 30

.PHONY: all help test test-quick test-xen bench bench-xen fuzz demo clean

all: $(BUILD)/vmi

help:
	@echo "make            build/vmi, the command-line tool (static where possible)"
	@echo "make test       everything: compile matrix, unit tests (plain and ASan+UBSan),"
	@echo "                the CLI tests, fuzz smoke run, real-guest tests (boots QEMU)"
	@echo "make test-quick the same without guests and fuzzing"
	@echo "make test-xen   vmi_xen.h on the simulated Xen (tests/xen; needs the x86_64 lab capture)"
	@echo "make bench      timings beside memcpy measured in the same run"
	@echo "make bench-xen  reads through vmi_xen.h's mapping cache, on the simulated Xen"
	@echo "make fuzz       libFuzzer harnesses, FUZZ_SECONDS each (default 30)"
	@echo "make demo       boot the x86_64 lab guest and run the vmi tool on it"

$(BUILD):
	@mkdir -p $(BUILD)

# Xen in the tool: linked in (statically in the static build) where
# libxen-dev is installed; without it the static build leaves Xen out (a
# static executable cannot dlopen Xen's libraries: see vmi_xen.h) and the
# dynamic one dlopens them.
XEN_LIBS    = -lxenctrl -lxenforeignmemory -lxenevtchn -lxenstore
XEN_A      := $(filter /%,$(shell $(CC) -print-file-name=libxenctrl.a 2>/dev/null))
XEN_A_LIBS  = -DVMI_XEN_LINK -Wl,--start-group $(XEN_LIBS) -lxencall -lxengnttab -lxendevicemodel \
              -lxentoollog -lxentoolcore -Wl,--end-group -lpthread
XEN_STATIC  = $(if $(XEN_A),$(XEN_A_LIBS),-DVMI_XEN_NO_DLOPEN)
XEN_DYNAMIC = $(if $(XEN_A),-DVMI_XEN_LINK $(XEN_LIBS))

# Static where the toolchain allows, dynamic otherwise.
$(BUILD)/vmi: examples/vmi.c $(HEADERS) | $(BUILD)
	$(CC) -std=c99 -O2 $(CWARN) -I. examples/vmi.c -o $@ -static $(XEN_STATIC) 2>/dev/null || \
	$(CC) -std=c99 -O2 $(CWARN) -I. examples/vmi.c -o $@ $(XEN_DYNAMIC)

# The simulated Xen (tests/xen): Xen's headers need GNU C, hence gnu11. Its
# shared form answers to the sonames vmi_xen.h dlopens.
XENSIM = $(BUILD)/xensim
XEN_TESTS = $(XENSIM)/test_xen_sim $(XENSIM)/test_xen_sim-san $(XENSIM)/test_xen_sim_dlopen \
            $(BUILD)/vmi-xensim $(XENSIM)/abi_check

$(XENSIM)/xensim.o: tests/xen/xensim.c tests/xen/xensim.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O1 -g $(CWARN) -fPIC -c $< -o $@

$(XENSIM)/xensim-san.o: tests/xen/xensim.c tests/xen/xensim.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O1 -g $(CWARN) $(SAN) -c $< -o $@

$(XENSIM)/lib/libxenctrl.so.4.17: $(XENSIM)/xensim.o
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libxenctrl.so.4.17 $< -o $@
	for n in libxenforeignmemory.so.1 libxenevtchn.so.1 libxenstore.so.4; do ln -sf libxenctrl.so.4.17 $(dir $@)$$n; done

$(XENSIM)/test_xen_sim: tests/xen/test_xen_sim.c $(XENSIM)/xensim.o tests/unit/test.h $(HEADERS)
	$(CC) -std=c99 -O1 -g $(CWARN) -DVMI_XEN_LINK -I. $< $(XENSIM)/xensim.o -o $@

$(XENSIM)/test_xen_sim-san: tests/xen/test_xen_sim.c $(XENSIM)/xensim-san.o tests/unit/test.h $(HEADERS)
	$(CC) -std=c99 -O1 -g $(CWARN) $(SAN) -DVMI_XEN_LINK -I. $< $(XENSIM)/xensim-san.o -o $@

$(XENSIM)/test_xen_sim_dlopen: tests/xen/test_xen_sim.c $(XENSIM)/lib/libxenctrl.so.4.17 tests/unit/test.h $(HEADERS)
	$(CC) -std=c99 -O1 -g $(CWARN) -I. $< $(XENSIM)/lib/libxenctrl.so.4.17 -Wl,-rpath,'$$ORIGIN/lib' -o $@

$(XENSIM)/abi_check: tests/xen/abi_check.c vmi.h vmi_xen.h
	$(CC) -std=gnu11 -O1 $(CWARN) -I. $< -o $@ $(XEN_LIBS)

$(BUILD)/bench-xensim: bench/xen_sim.c $(XENSIM)/xensim.o $(HEADERS)
	$(CC) -std=c99 -O2 $(CWARN) -DVMI_XEN_LINK -I. $< $(XENSIM)/xensim.o -o $@

bench-xen: $(BUILD)/bench-xensim
	$(BUILD)/bench-xensim

$(BUILD)/vmi-xensim: examples/vmi.c $(XENSIM)/xensim.o $(HEADERS)
	$(CC) -std=c99 -O2 $(CWARN) -DVMI_XEN_LINK -I. examples/vmi.c $(XENSIM)/xensim.o -o $@

# The tool under ASan+UBSan, for the hostile synthetic Windows images.
$(BUILD)/vmi-san: examples/vmi.c $(HEADERS) | $(BUILD)
	$(CC) -std=c99 -O1 -g $(CWARN) $(SAN) -I. examples/vmi.c -o $@ $(XEN_DYNAMIC)

$(BUILD)/unit/%: tests/unit/%.c tests/unit/test.h tests/unit/live_guest.h $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -O1 -g $(CWARN) -I. $< -o $@

$(BUILD)/unit-san/%: tests/unit/%.c tests/unit/test.h tests/unit/live_guest.h $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -O1 -g $(CWARN) $(SAN) -I. $< -o $@

$(BUILD)/bench: bench/bench.c $(HEADERS) | $(BUILD)
	$(CC) -std=c99 -O2 -march=native $(CWARN) -I. bench/bench.c -o $@

$(BUILD)/mkimage: tests/cli/mkimage.c $(HEADERS) | $(BUILD)
	$(CC) -std=c99 -O1 -g $(CWARN) -I. $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	clang -std=c99 -O1 -g $(CWARN) -fsanitize=fuzzer,address,undefined -I. $< -o $@

test: all $(addprefix $(BUILD)/unit/,$(UNITS)) $(addprefix $(BUILD)/unit-san/,$(UNITS)) \
      $(BUILD)/mkimage $(BUILD)/fuzz/fuzz_file $(BUILD)/fuzz/fuzz_paging $(BUILD)/fuzz/fuzz_types $(BUILD)/fuzz/fuzz_pe \
      $(XEN_TESTS) $(BUILD)/vmi-san
	sh tests/run.sh all

test-quick: all $(addprefix $(BUILD)/unit/,$(UNITS)) $(addprefix $(BUILD)/unit-san/,$(UNITS)) $(BUILD)/mkimage
	sh tests/run.sh quick

test-xen: all $(XEN_TESTS)
	sh tests/xen/run.sh

# With a lab capture present, also times a real guest's ELF core.
bench: $(BUILD)/bench $(BUILD)/bench-xensim
	$(BUILD)/bench $(wildcard $(BUILD)/guests/x86_64/mem.elf)
	python3 bench/live.py $(BUILD)/bench
	$(BUILD)/bench-xensim

fuzz: $(BUILD)/fuzz/fuzz_file $(BUILD)/fuzz/fuzz_paging $(BUILD)/fuzz/fuzz_types $(BUILD)/fuzz/fuzz_pe
	sh tests/fuzz/run.sh $(BUILD)/fuzz $(FUZZ_SECONDS)

demo: all
	python3 tests/guests/demo.py $(BUILD)/vmi

clean:
	rm -rf $(BUILD)
