using Microsoft.Extensions.Logging;
using ModelRouting.Logging;
using ModelRouting.Registry;

namespace ModelRouting.Admin;

/// <summary>
/// Keeps a default endpoint set at runtime scoped to the configuration it overrode, each time configuration
/// is loaded or reloaded: an override whose configuration default changed lapses (logged, and dropped from
/// the state file); one still in force that hides configuration's default is logged as a warning, so it never
/// overrides configuration silently. An override from an older state file (without
/// <see cref="DefaultOverride.Replaces"/>) is scoped to configuration's default at its first load.
/// </summary>
internal static class DefaultOverrideScope
{
    /// <summary>Returns the overlay to keep over <paramref name="configured"/>; saves it when it changed (best effort).</summary>
    public static RuntimeOverlay Review(RuntimeOverlay overlay, ModelRegistry configured, RuntimeStateStore store, ILogger logger)
    {
        if (overlay.Default is not { } current)
        {
            return overlay;
        }

        var configuredDefault = configured.DefaultId;
        if (current.Replaces is null)
        {
            overlay = overlay.Clone();
            overlay.Default!.Replaces = new ReplacedDefault { Id = configuredDefault };
            TrySave(overlay, store, logger);
        }
        else if (current.Replaces.Id != configuredDefault)
        {
            AdminLog.DefaultOverrideLapsed(logger, Show(current.Id), Show(current.Replaces.Id), Show(configuredDefault));
            overlay = overlay.Clone();
            overlay.Default = null;
            TrySave(overlay, store, logger);
            return overlay;
        }

        if (overlay.Default!.Id != configuredDefault && configuredDefault is not null)
        {
            AdminLog.DefaultOverridden(logger, Show(configuredDefault), Show(overlay.Default.Id));
        }

        return overlay;
    }

    private static string Show(string? id) => id is null ? "(none)" : LogValue.Sanitize(id);

    private static void TrySave(RuntimeOverlay overlay, RuntimeStateStore store, ILogger logger)
    {
        try
        {
            store.Save(overlay);
        }
        catch (RuntimeStateNotSavedException e)
        {
            AdminLog.ReviewNotSaved(logger, e.Message);
        }
    }
}
