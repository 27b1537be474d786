#ifndef CGITOFFLINE_H
#define CGITOFFLINE_H

/* How many times libgit2 asked to load CA certificates since the process started (certificates.c). */
int cgitoffline_skipped_certificate_loads(void);

/* How many times libgit2 tried to start a GSS-API (Negotiate) authentication and was refused (negotiate.c). */
int cgitoffline_refused_negotiations(void);

#endif
