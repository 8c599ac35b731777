"""Documents of a case (人民调解文书): built from the case, typeset to PDF, filled into DOCX."""
