"""What sending a message can fail with (shared by the mailer and the mail queue)."""


class DeliveryError(Exception):
    """The message could not be handed over for delivery."""


class MailServerUnavailable(DeliveryError):
    """The mail server did not answer, or answered with a temporary (4xx) error: try again later."""
