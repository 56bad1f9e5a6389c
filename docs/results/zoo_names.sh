# Sourced by zoo_worker.sh, zoo_ship.sh and zoo_queue.sh: where a zoo model of a training seed
# trains and what it ships as. `zoo_names MODEL SEED` sets run (its run folder), name (its
# weights' name) and curve (its metrics file's name in docs/results/zoo-curves); seed 0 is the
# zoo's first run, any other seed a second training seed on the same held-out split.
zoo_names() {
  run=.bgtrain/zoo/$1-cifar10 name=$1.cifar10 curve=$1
  if [ "$2" != 0 ]; then
    run=.bgtrain/zoo/$1-seed$2-cifar10 name=$1.cifar10_seed$2 curve=$1-seed$2
  fi
}
