package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -cc clang -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I./include" -type endpoint_key -type endpoint_value -type addr_key -type counter_id -type flow_key -type flow_key4 -type flow_action -type fast_config -type dest_counters -type syncookie_key -type syn_config -type steer_limit -type steer_bucket -type mark_key -type mark_range -type mark_value -type iface_info -type spread_service steer steer.c
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -cc clang -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I./include" -type counter_id decap decap.c
