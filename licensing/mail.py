"""The site's SMTP back-end: Django's, with its connection reachable from another thread from
the first byte on, so that ``outbox`` can cut off a send that takes too long in all (Django's
own keeps the connection out of reach until it has read the greeting, started TLS and logged
in; EMAIL_TIMEOUT bounds each wait, not the whole conversation); and with the recipients the
mail server refused kept (Django's own drops them when it accepted the message for others)."""

from django.core.mail.backends import smtp


class SMTPBackend(smtp.EmailBackend):
    smtp = None  # the connection being made or used, once its socket is being opened
    # The recipients of the message last sent that the mail server refused, as smtplib gives
    # them: {address: (code, reply)}. (One refused for all of them is an SMTPRecipientsRefused.)
    refused: dict = {}

    @property
    def connection_class(self):
        backend, base = self, super().connection_class

        class Connection(base):
            def connect(self, *args, **kwargs):
                backend.smtp = self  # before the greeting is read
                return super().connect(*args, **kwargs)

            def sendmail(self, *args, **kwargs):
                backend.refused = super().sendmail(*args, **kwargs)
                return backend.refused

        return Connection
