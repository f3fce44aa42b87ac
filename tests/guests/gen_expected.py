#!/usr/bin/env python3
"""Expected member offsets from pahole (Debian `dwarves`), the oracle for test_types.

usage: gen_expected.py BTF_FILE > expected.txt
Lines: "member STRUCT PATH BIT_OFFSET BIT_SIZE BYTE_SIZE" and "size STRUCT BYTES".
Members of anonymous structs/unions are listed under their own name (lookups see
through them); members of a named member of anonymous type as "outer.inner"."""
import re, subprocess, sys

STRUCTS = """task_struct mm_struct list_head hlist_node hlist_head module uts_namespace new_utsname cred
files_struct fdtable file dentry qstr inode vm_area_struct pid upid signal_struct sched_entity
kobject kset super_block path vfsmount mount nsproxy pid_namespace thread_info thread_struct
rb_node rb_root maple_tree mm_rss_stat kernel_symbol module_layout load_info callback_head
sighand_struct task_io_accounting sock socket net_device page address_space user_namespace
net ipv4_devconf in_device timer_list hrtimer rq cfs_rq kernfs_node seq_file
bpf_prog bpf_map linux_binprm vm_struct tty_struct perf_event""".split()

COMMENT = re.compile(r'/\*\s*(\d+)(?::\s*(\d+))?\s+(\d+)\s*\*/\s*$')

def main():
    btf = sys.argv[1]
    for s in STRUCTS:
        r = subprocess.run(['pahole', '-C', s, btf], capture_output=True, text=True)
        if r.returncode or not r.stdout.strip():
            print('# pahole has no', s, file=sys.stderr)
            continue
        # top-level members: parse() returns what the outer frame held when it closed
        members, size = parse_top(s, r.stdout)
        for p, off, bits, nbytes in members:
            print('member', s, p, off, bits, nbytes)
        if size is not None:
            print('size', s, size)

def parse_top(name, text):
    out, stack, size = [], [], None
    for raw in text.splitlines():
        line = re.sub(r'\s*__attribute__\(\(.*?\)\)\)?', '', raw.strip())
        m = re.match(r'/\* size: (\d+),', line)
        if m and len(stack) == 1:
            size = int(m.group(1))
        if not line or line.startswith('/*'):
            continue
        if line.endswith('{'):
            stack.append([])
            continue
        if line.startswith('}'):
            children = stack.pop()
            if not stack:
                out = children
                continue
            nm = re.match(r'}\s*([A-Za-z_]\w*)(?:\[[^\]]*\])*\s*(?::\s*(\d+))?', line)
            c = COMMENT.search(line)
            if nm:
                children = [(nm.group(1) + '.' + p, *rest) for p, *rest in children]
                if c:
                    stack[-1].append((nm.group(1), int(c.group(1)) * 8 + int(c.group(2) or 0),
                                      int(nm.group(2) or 0), int(c.group(3))))
            stack[-1].extend(children)
            continue
        c = COMMENT.search(line)
        if not c or not stack:
            continue
        decl = line[:c.start()].strip()
        fp = re.search(r'\(\*\s*(\w+)\)', decl)
        if fp:
            member, bits = fp.group(1), 0
        else:
            m = re.search(r'([A-Za-z_]\w*)\s*(?:\[[^\]]*\])*\s*(?::\s*(\d+))?\s*;$', decl)
            if not m:
                continue
            member, bits = m.group(1), int(m.group(2) or 0)
        off = int(c.group(1)) * 8 + int(c.group(2) or 0)
        stack[-1].append((member, off, bits, int(c.group(3))))
    return out, size

if __name__ == '__main__':
    main()
