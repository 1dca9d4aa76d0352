package main

import "runtime/debug"

// cliVersion is what the CLI tells the server it is when it syncs as a
// worker's phone: the module's version, else the commit it was built from.
func cliVersion() string {
	v := "doorbook"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if info.Main.Version != "" && info.Main.Version != "(devel)" {
		return v + " " + info.Main.Version
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return v + " " + s.Value[:12]
		}
	}
	return v
}
