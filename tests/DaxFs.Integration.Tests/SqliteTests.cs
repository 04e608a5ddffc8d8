using System.Text;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Integration.Tests;

/// <summary>sqlite3 on the mount: 10,000 rows (9,000 in one transaction, 1,000 in autocommit mode, each its own
/// fsync'ed transaction), integrity_check ok; then the volume goes through an in-process unmount, a `daxfs mount` /
/// `daxfs umount` cycle and a second in-process mount, and each time the database checks ok with the same rows and
/// the same content hash. A WAL-mode database (shared-memory index mapped from the mount) does the same.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class SqliteTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

    private static string Sql(string db, string script)
    {
        Proc.Result r = Proc.Run("sqlite3", ["-bail", db], TimeSpan.FromSeconds(90), stdin: script);
        Assert.True(r.Exit == 0 && r.Err.Length == 0, r.Describe($"sqlite3 {db}"));
        return r.Out.Trim();
    }

    private static string Fill(string journalMode)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"PRAGMA journal_mode={journalMode};");
        sb.AppendLine("CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT NOT NULL, v BLOB NOT NULL);");
        sb.AppendLine("CREATE INDEX t_k ON t(k);");
        sb.AppendLine("BEGIN;");
        sb.AppendLine("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 9000) " +
            "INSERT INTO t(id, k, v) SELECT x, printf('key-%06d', x), randomblob(50 + x % 400) FROM c;");
        sb.AppendLine("COMMIT;");
        for (int i = 9001; i <= 10000; i++)
            sb.AppendLine($"INSERT INTO t(id, k, v) VALUES({i}, 'key-{i:D6}', randomblob({50 + i % 400}));");
        sb.AppendLine("PRAGMA integrity_check;");
        sb.AppendLine("SELECT count(*) FROM t;");
        return sb.ToString();
    }

    private const string Check = "PRAGMA integrity_check;\nSELECT count(*), sum(id), sum(length(v)) FROM t;\n.sha3sum\n";

    [Fact]
    public void TenThousandRowsSurviveRemountsThroughTheLibraryAndTheDaemon() => Hard.Run(Limit, () =>
    {
        using var v = new TestVolume("sqlite", output);
        v.MountInProcess();
        string db = v.M("rows.db"), wal = v.M("wal.db");
        string[] filled = Sql(db, Fill("DELETE")).Split('\n');
        Assert.Equal(["delete", "ok", "10000"], filled);
        string[] filledWal = Sql(wal, Fill("WAL")).Split('\n');
        Assert.Equal(["wal", "ok", "10000"], filledWal);
        string expected = Sql(db, Check), expectedWal = Sql(wal, Check);
        output.WriteLine($"rows.db: {expected.ReplaceLineEndings(" | ")}\nwal.db: {expectedWal.ReplaceLineEndings(" | ")}");
        Assert.StartsWith("ok\n10000|50005000|", expected, StringComparison.Ordinal);
        Assert.StartsWith("ok\n10000|50005000|", expectedWal, StringComparison.Ordinal);

        v.UnmountInProcess();
        v.AssertFsckClean();

        v.MountCli();
        Assert.Equal(expected, Sql(db, Check));
        Assert.Equal(expectedWal, Sql(wal, Check));
        // One more autocommit row through the daemon, and it is gone again.
        Assert.Equal("10001", Sql(db, "INSERT INTO t(id, k, v) VALUES(10001, 'x', x'00');\nSELECT count(*) FROM t;"));
        Assert.Equal("10000", Sql(db, "DELETE FROM t WHERE id = 10001;\nSELECT count(*) FROM t;"));
        v.UnmountCli();
        Assert.Contains("closed cleanly", v.DaemonLog(), StringComparison.Ordinal);
        v.AssertFsckClean();

        v.MountInProcess();
        Assert.Equal(expected, Sql(db, Check));
        Assert.Equal(expectedWal, Sql(wal, Check));
        v.UnmountInProcess();
        v.AssertFsckClean();
    });
}
