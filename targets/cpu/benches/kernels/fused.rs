pub fn run(_t: usize, _q: bool) {}
