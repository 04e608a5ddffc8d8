global using Xunit;

// The FUSE tests run only on Linux.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
