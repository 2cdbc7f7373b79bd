namespace ModelRouting.Tests.Observability;

/// <summary>
/// The headless browser the status-page test drives: Chromium from the system (Debian's <c>chromium</c> package;
/// <c>GATEWAY_CHROMIUM</c> names another), launched by Playwright .NET with its bundled driver, so no browser is
/// downloaded. Absent on a developer's machine the test is skipped with the reason; under CI (<c>CI=true</c>) or
/// with <c>GATEWAY_REQUIRE_BROWSER=1</c> (.ci/run sets it) it fails instead of skipping.
/// </summary>
internal static class Browser
{
    public static string? ExecutablePath { get; } = Find();

    public static bool Required =>
        Environment.GetEnvironmentVariable("GATEWAY_REQUIRE_BROWSER") == "1"
        || string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    private static string? Find()
    {
        if (Environment.GetEnvironmentVariable("GATEWAY_CHROMIUM") is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : null;
        }

        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var name in new[] { "chromium", "chromium-browser", "google-chrome" })
        {
            foreach (var directory in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                var candidate = Path.Combine(directory, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }
}

/// <summary>A test that needs the headless browser: skipped (with the reason) only when it is absent and not required.</summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public BrowserFactAttribute()
    {
        if (Browser.ExecutablePath is null && !Browser.Required)
        {
            Skip = "No Chromium on this machine (apt-get install chromium, or set GATEWAY_CHROMIUM); CI and GATEWAY_REQUIRE_BROWSER=1 make this a failure.";
        }
    }
}
