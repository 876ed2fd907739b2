# ssh-localhost.sh
# Whether root in dom0 reaches dom0 itself over SSH without a prompt, as
# `xl migrate NAME localhost` needs (tools/xl/xl_migrate.c main_migrate runs
# `ssh localhost xl migrate-receive`). Bounded: a prompt nobody answers fails
# at once without a terminal, a host that does not answer runs out.
timeout 20 ssh localhost true </dev/null 2>&1
