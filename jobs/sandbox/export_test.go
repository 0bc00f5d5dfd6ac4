package sandbox

// workerPIDs returns the process IDs of the pool's live workers.
func (p *Pool) workerPIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for w := range p.live {
		pids = append(pids, w.cmd.Process.Pid)
	}
	return pids
}
