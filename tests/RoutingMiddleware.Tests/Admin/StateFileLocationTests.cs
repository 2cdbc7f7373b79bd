using ModelRouting.Admin;

namespace ModelRouting.Tests.Admin;

/// <summary>SPEC §11: runtime state defaults to a per-user state folder, not the output folder.</summary>
public sealed class StateFileLocationTests
{
    private static readonly string s_root = Path.Combine(Path.GetTempPath(), "content-root");

    [Fact]
    public void Resolve_Relative_IsRelativeToTheContentRoot() =>
        Assert.Equal(Path.Combine(s_root, "state", "s.json"), StateFileLocation.Resolve(Path.Combine("state", "s.json"), s_root));

    [Fact]
    public void Resolve_Empty_KeepsChangesInMemory() =>
        Assert.Null(StateFileLocation.Resolve("", s_root));

    [Fact]
    public void Resolve_NotConfigured_IsOutsideTheContentRootAndTheBinaries()
    {
        var path = StateFileLocation.Resolve(null, s_root)!;

        Assert.True(Path.IsPathRooted(path));
        Assert.EndsWith(Path.Combine("model-gateway", "state.json"), path);
        Assert.False(path.StartsWith(AppContext.BaseDirectory, StringComparison.Ordinal), path);
    }

    [Fact]
    public void Default_XdgStateHome_Wins()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // XDG applies on Unix only.
        }

        var path = StateFileLocation.Default(name => name switch { "XDG_STATE_HOME" => "/xdg/state", "HOME" => "/home/u", _ => null });
        Assert.Equal("/xdg/state/model-gateway/state.json", path);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("relative/xdg")]
    public void Default_NoUsableXdg_UsesHomeLocalState(string? xdg)
    {
        if (OperatingSystem.IsWindows())
        {
            return; // XDG applies on Unix only.
        }

        var path = StateFileLocation.Default(name => name switch { "XDG_STATE_HOME" => xdg, "HOME" => "/home/u", _ => null });
        Assert.Equal("/home/u/.local/state/model-gateway/state.json", path);
    }
}
