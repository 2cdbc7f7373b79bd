using Microsoft.Extensions.Logging;
using ModelRouting.Logging;

namespace ModelRouting.Admin;

/// <summary>
/// The admin feature's log lines (event ids 40–49). Values a client supplied (ids, aliases, paths) go
/// through <see cref="LogValue.Sanitize"/>; keys are never logged.
/// </summary>
internal static partial class AdminLog
{
    /// <summary>Logs an applied change; <paramref name="change"/> and <paramref name="id"/> are sanitized here.</summary>
    public static void Changed(ILogger logger, string change, string? id) =>
        ChangedCore(logger, LogValue.Sanitize(change), LogValue.Sanitize(id ?? "(none)"));

    [LoggerMessage(41, LogLevel.Information, "Admin change: {Change} '{Id}'.", EventName = "AdminChanged")]
    private static partial void ChangedCore(ILogger logger, string change, string id);

    [LoggerMessage(42, LogLevel.Error, "Admin change refused: the runtime state file '{Path}' could not be written; nothing was applied. {Reason}", EventName = "AdminStateNotSaved")]
    public static partial void StateNotSaved(ILogger logger, string path, string reason);

    [LoggerMessage(43, LogLevel.Information, "Runtime state file: '{Path}' (ModelRouting:Admin:StateFile).", EventName = "AdminStateFile")]
    public static partial void StateFile(ILogger logger, string path);

    [LoggerMessage(44, LogLevel.Information, "Runtime changes are kept in memory only (ModelRouting:Admin:StateFile is empty): they are lost on restart.", EventName = "AdminStateInMemory")]
    public static partial void StateInMemory(ILogger logger);

    [LoggerMessage(45, LogLevel.Information, "Management listener: {Urls} (ModelRouting:Admin:Urls); admin API {AdminState}.", EventName = "ManagementListener")]
    public static partial void Listener(ILogger logger, string urls, string adminState);

    [LoggerMessage(46, LogLevel.Information, "The default endpoint set at runtime ('{Override}') lapsed: configuration's default changed from '{Replaced}' to '{Configured}', which is now in force.", EventName = "AdminDefaultOverrideLapsed")]
    public static partial void DefaultOverrideLapsed(ILogger logger, string @override, string replaced, string configured);

    [LoggerMessage(47, LogLevel.Warning, "A runtime change hides configuration's default endpoint '{Configured}': the default in force is '{Override}' (set through the admin API; PUT /admin/default to change it). It lapses when configuration's default changes.", EventName = "AdminDefaultOverridden")]
    public static partial void DefaultOverridden(ILogger logger, string configured, string @override);

    [LoggerMessage(48, LogLevel.Warning, "The runtime state file could not be updated ({Reason}); the change holds in memory until the next start.", EventName = "AdminStateReviewNotSaved")]
    public static partial void ReviewNotSaved(ILogger logger, string reason);
}
