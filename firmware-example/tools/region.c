/*
 * region.c: a QEMU TCG plugin that counts the guest instructions executed between two
 * marker addresses (the firmware's `bench_start` and `bench_stop` functions).
 *
 * Arguments (comma separated after the plugin path):
 *   start=0xADDR       address of the first instruction of bench_start (Thumb bit cleared)
 *   stop=0xADDR        address of the first instruction of bench_stop
 *   mark=NAME@0xADDR   optional, up to 8: a phase marker function; inside a region, the
 *                      instructions from one marker to the next are attributed to the phase
 *                      of the first (those before any marker to "other")
 *
 * For every start/stop pair it prints "region N: K insns" through qemu_plugin_outs (shown with
 * `-d plugin`), then, when marks were given, "region N phases: other=A NAME=B ..." with one
 * count per phase (they sum to K), and at exit "regions: N, total region insns: S, total
 * insns: T".
 * The counts are exact and deterministic: QEMU counts executed instructions, not cycles.
 *
 * Build (header from Debian's qemu source; see scripts/setup-firmware.sh):
 *   gcc -O2 -shared -fPIC -I<dir with qemu-plugin.h> region.c -o libregion.so
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* Single vCPU (Cortex-M), so plain counters are enough. */
static uint64_t insns_total;
static uint64_t region_begin;
static uint64_t region_count;
static uint64_t region_sum;
static int region_open;
static uint64_t addr_start;
static uint64_t addr_stop;

#define MAX_MARKS 8
/* Phase 0 is "other"; mark i is phase i + 1. */
static int n_marks;
static uint64_t mark_addr[MAX_MARKS];
static char mark_name[MAX_MARKS][32];
static uint64_t phase_insns[MAX_MARKS + 1];
static uint64_t phase_begin;
static int phase;

/* Attributes the instructions since the last switch to the current phase. */
static void close_phase(void)
{
    phase_insns[phase] += insns_total - phase_begin;
    phase_begin = insns_total;
}

static void on_mark(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    if (region_open) {
        close_phase();
    }
    phase = (int)(uintptr_t)udata;
}

static void on_start(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    (void)udata;
    region_begin = insns_total;
    region_open = 1;
    memset(phase_insns, 0, sizeof phase_insns);
    phase_begin = insns_total;
    phase = 0;
}

static void on_stop(unsigned int vcpu, void *udata)
{
    char line[96];
    uint64_t n;

    (void)vcpu;
    (void)udata;
    if (!region_open) {
        return;
    }
    region_open = 0;
    n = insns_total - region_begin;
    region_count++;
    region_sum += n;
    snprintf(line, sizeof line, "region %" PRIu64 ": %" PRIu64 " insns\n", region_count, n);
    qemu_plugin_outs(line);
    if (n_marks > 0) {
        char phases[64 + MAX_MARKS * 56];
        int len;
        int i;

        close_phase();
        len = snprintf(phases, sizeof phases, "region %" PRIu64 " phases: other=%" PRIu64,
                       region_count, phase_insns[0]);
        for (i = 0; i < n_marks && len > 0 && (size_t)len < sizeof phases; i++) {
            len += snprintf(phases + len, sizeof phases - (size_t)len, " %s=%" PRIu64,
                            mark_name[i], phase_insns[i + 1]);
        }
        qemu_plugin_outs(phases);
        qemu_plugin_outs("\n");
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t i;
    size_t n = qemu_plugin_tb_n_insns(tb);

    (void)id;
    for (i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);

        /* The marker callbacks run before the instruction is counted, so a region counts the
         * instructions from bench_start's first one up to, not including, bench_stop's. */
        if (pc == addr_start) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_start, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        if (pc == addr_stop) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_stop, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        for (int m = 0; m < n_marks; m++) {
            if (pc == mark_addr[m]) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS,
                                                       (void *)(uintptr_t)(m + 1));
            }
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &insns_total, 1);
    }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *udata)
{
    char line[160];

    (void)id;
    (void)udata;
    snprintf(line, sizeof line,
             "regions: %" PRIu64 ", total region insns: %" PRIu64 ", total insns: %" PRIu64 "\n",
             region_count, region_sum, insns_total);
    qemu_plugin_outs(line);
}

static int parse_addr(const char *text, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 0);

    if (end == text || *end != '\0') {
        return -1;
    }
    /* Thumb function symbols carry bit 0; instruction addresses do not. */
    *out = (uint64_t)v & ~(uint64_t)1;
    return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    int i;
    int have_start = 0;
    int have_stop = 0;

    (void)info;
    for (i = 0; i < argc; i++) {
        const char *arg = argv[i];

        if (strncmp(arg, "start=", 6) == 0 && parse_addr(arg + 6, &addr_start) == 0) {
            have_start = 1;
        } else if (strncmp(arg, "stop=", 5) == 0 && parse_addr(arg + 5, &addr_stop) == 0) {
            have_stop = 1;
        } else if (strncmp(arg, "mark=", 5) == 0 && n_marks < MAX_MARKS) {
            const char *at = strchr(arg + 5, '@');
            size_t len = at ? (size_t)(at - (arg + 5)) : 0;

            if (at == NULL || len == 0 || len >= sizeof mark_name[0] ||
                parse_addr(at + 1, &mark_addr[n_marks]) != 0) {
                fprintf(stderr, "region plugin: bad mark '%s' (want mark=NAME@0xADDR)\n", arg);
                return -1;
            }
            memcpy(mark_name[n_marks], arg + 5, len);
            mark_name[n_marks][len] = '\0';
            n_marks++;
        } else {
            fprintf(stderr,
                    "region plugin: bad argument '%s' (want start=0x.. stop=0x.. [mark=NAME@0x..])\n",
                    arg);
            return -1;
        }
    }
    if (!have_start || !have_stop) {
        fprintf(stderr, "region plugin: both start=ADDR and stop=ADDR are required\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
