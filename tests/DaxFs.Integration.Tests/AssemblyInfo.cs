// The integration suite drives Linux-only machinery (FUSE, statx, setpriv).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
