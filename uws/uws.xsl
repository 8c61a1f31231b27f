<?xml version="1.0" encoding="UTF-8"?>
<!-- UWS 1.1 job lists and jobs as HTML, for a person who opens them in a browser.
     Clients (pyvo, TOPCAT, alvo submit) read the same XML and never apply it: the
     documents only name this stylesheet in an xml-stylesheet processing instruction. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0"
    xmlns:xlink="http://www.w3.org/1999/xlink"
    xmlns:ji="urn:x-uws:jobinfo"
    exclude-result-prefixes="uws xlink ji">
  <xsl:output method="html" encoding="UTF-8" indent="yes"/>

  <xsl:template match="/uws:jobs">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title>UWS job list</title>
        <style>body{font:15px/1.45 system-ui,sans-serif;margin:20px;color:#111827}table{border-collapse:collapse}td,th{border-bottom:1px solid #e5e7eb;padding:4px 10px;text-align:left}code{background:#f3f4f6;padding:0 3px}</style>
      </head>
      <body>
        <main>
          <p><a href="/">service home</a> · <a href="/uws">all job lists</a></p>
          <h1>UWS job list</h1>
          <p>This is the job list's XML (UWS 1.1), shown as a table by a stylesheet; pyvo, TOPCAT
            and <code>alvo submit</code> read the same document. Filter with
            <code>?PHASE=EXECUTING</code>, <code>?LAST=10</code> or <code>?AFTER=2025-01-01T00:00:00Z</code>.</p>
          <xsl:choose>
            <xsl:when test="uws:jobref">
              <table>
                <thead><tr><th scope="col">job</th><th scope="col">phase</th><th scope="col">run id</th><th scope="col">owner</th><th scope="col">created</th></tr></thead>
                <tbody>
                  <xsl:for-each select="uws:jobref">
                    <tr>
                      <td><a href="{@xlink:href}"><xsl:value-of select="@id"/></a></td>
                      <td><xsl:value-of select="uws:phase"/></td>
                      <td><xsl:value-of select="uws:runId"/></td>
                      <td><xsl:value-of select="uws:ownerId"/></td>
                      <td><xsl:value-of select="uws:creationTime"/></td>
                    </tr>
                  </xsl:for-each>
                </tbody>
              </table>
            </xsl:when>
            <xsl:otherwise><p>No job in this list (with these filters).</p></xsl:otherwise>
          </xsl:choose>
        </main>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="/uws:job">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title>UWS job <xsl:value-of select="uws:jobId"/></title>
        <style>body{font:15px/1.45 system-ui,sans-serif;margin:20px;color:#111827}table{border-collapse:collapse}td,th{border-bottom:1px solid #e5e7eb;padding:4px 10px;text-align:left;vertical-align:top}code{background:#f3f4f6;padding:0 3px}</style>
      </head>
      <body>
        <main>
          <p><a href="/">service home</a> · <a href=".">the job list</a></p>
          <h1>Job <xsl:value-of select="uws:jobId"/>: <xsl:value-of select="uws:phase"/></h1>
          <xsl:if test="uws:jobInfo/ji:progress">
            <p>Progress:
              <xsl:if test="uws:jobInfo/ji:progress/@fraction">
                <xsl:value-of select="round(uws:jobInfo/ji:progress/@fraction * 100)"/> % ·
              </xsl:if>
              <xsl:value-of select="uws:jobInfo/ji:progress"/></p>
          </xsl:if>
          <xsl:if test="uws:errorSummary">
            <p><strong>Error:</strong> <xsl:value-of select="uws:errorSummary/uws:message"/></p>
          </xsl:if>
          <table>
            <tbody>
              <tr><th scope="row">run id</th><td><xsl:value-of select="uws:runId"/></td></tr>
              <tr><th scope="row">owner</th><td><xsl:value-of select="uws:ownerId"/></td></tr>
              <tr><th scope="row">created</th><td><xsl:value-of select="uws:creationTime"/></td></tr>
              <tr><th scope="row">started</th><td><xsl:value-of select="uws:startTime"/></td></tr>
              <tr><th scope="row">ended</th><td><xsl:value-of select="uws:endTime"/></td></tr>
              <tr><th scope="row">destruction</th><td><xsl:value-of select="uws:destruction"/></td></tr>
            </tbody>
          </table>
          <h2>Parameters</h2>
          <table>
            <tbody>
              <xsl:for-each select="uws:parameters/uws:parameter">
                <tr><th scope="row"><xsl:value-of select="@id"/></th><td><code><xsl:value-of select="."/></code></td></tr>
              </xsl:for-each>
            </tbody>
          </table>
          <h2>Results</h2>
          <xsl:choose>
            <xsl:when test="uws:results/uws:result">
              <ul>
                <xsl:for-each select="uws:results/uws:result">
                  <li><a href="{@xlink:href}"><xsl:value-of select="@id"/></a>
                    <xsl:if test="@mime-type"> (<xsl:value-of select="@mime-type"/>)</xsl:if></li>
                </xsl:for-each>
              </ul>
            </xsl:when>
            <xsl:otherwise><p>None yet.</p></xsl:otherwise>
          </xsl:choose>
        </main>
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
