namespace ModelRouting.Configuration;

/// <summary>Thrown at start-up when the <c>ModelRouting</c> configuration is invalid; lists every error.</summary>
public sealed class ModelRoutingConfigurationException : Exception
{
    /// <summary>Creates the exception from the validation errors.</summary>
    public ModelRoutingConfigurationException(IReadOnlyList<string> errors)
        : base("Invalid ModelRouting configuration:" + Environment.NewLine + string.Join(Environment.NewLine, errors.Select(e => "  - " + e)))
    {
        Errors = errors;
    }

    /// <summary>Creates the exception with a message.</summary>
    public ModelRoutingConfigurationException()
        : this([])
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public ModelRoutingConfigurationException(string message)
        : base(message)
    {
        Errors = [message];
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public ModelRoutingConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [message];
    }

    /// <summary>Gets every validation error, each naming the entry and the field.</summary>
    public IReadOnlyList<string> Errors { get; }
}
