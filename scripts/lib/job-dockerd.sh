# Sourced by job scripts (ci-replay.sh, run-benchmarks.sh): a machine with Docker
# installed but no engine running (CI, containers, no systemd) gets one for the job, as
# the test fixtures do, and loses it when the job ends. An engine already running is
# used and left alone.
#   start_job_dockerd LOGFILE    # no-op without dockerd, without root, or if one answers
#   stop_job_dockerd             # only stops the engine start_job_dockerd started
job_dockerd=""

start_job_dockerd() {
    command -v dockerd >/dev/null 2>&1 && [ "$(id -u)" = 0 ] || return 0
    docker info >/dev/null 2>&1 && return 0
    mkdir -p "$(dirname "$1")"
    dockerd > "$1" 2>&1 &
    job_dockerd=$!
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "dockerd started for this job does not answer after 30 s; its log: $1" >&2
}

stop_job_dockerd() {
    if [ -n "$job_dockerd" ]; then
        kill "$job_dockerd" 2>/dev/null || true
        wait "$job_dockerd" 2>/dev/null || true
        job_dockerd=""
    fi
}
