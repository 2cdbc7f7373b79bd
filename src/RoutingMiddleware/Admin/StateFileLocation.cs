namespace ModelRouting.Admin;

/// <summary>
/// Where the runtime state file lives (SPEC §11): a configured path (relative to the content root), or a
/// per-user state folder that survives a redeploy of the binaries and is writable in a container, never the
/// output folder. The rule is documented on <see cref="Configuration.AdminOptions.StateFile"/>.
/// </summary>
internal static class StateFileLocation
{
    /// <summary>The folder under the platform's state folder.</summary>
    public const string AppFolder = "model-gateway";

    /// <summary>The file name in that folder.</summary>
    public const string FileName = "state.json";

    /// <summary>
    /// Resolves the state file's full path: null (configured, empty) keeps changes in memory only; not
    /// configured gives <see cref="Default"/>.
    /// </summary>
    public static string? Resolve(string? configured, string contentRoot, Func<string, string?>? environment = null)
    {
        if (configured is null)
        {
            return Default(environment);
        }

        return string.IsNullOrWhiteSpace(configured) ? null : Path.GetFullPath(configured, contentRoot);
    }

    /// <summary>The default state file for this user and platform.</summary>
    public static string Default(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (OperatingSystem.IsWindows())
        {
            var local = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
            return Path.Combine(string.IsNullOrEmpty(local) ? Path.GetTempPath() : local, AppFolder, FileName);
        }

        // XDG Base Directory: state that should persist between restarts but is not portable data.
        var xdg = environment("XDG_STATE_HOME");
        if (!string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg))
        {
            return Path.Combine(xdg, AppFolder, FileName);
        }

        var home = environment("HOME");
        if (string.IsNullOrEmpty(home) || !Path.IsPathRooted(home))
        {
            home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        }

        return string.IsNullOrEmpty(home)
            ? Path.Combine(Path.GetTempPath(), AppFolder, FileName)
            : Path.Combine(home, ".local", "state", AppFolder, FileName);
    }
}
